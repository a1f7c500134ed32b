"""What `/readyz` answers from: the database's and the engine's probe, cached for a few
seconds and run once for every caller waiting on it, so that a flood of `/readyz` costs
one probe every few seconds and holds no worker thread while it waits."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

log = logging.getLogger(__name__)

# How long one probe's answer is given again; a probe's own wait is bounded by the
# database's and the engine's timeouts.
MAX_AGE_SECONDS = 2.0
# A caller waits this long for a probe under way; the probe goes on for the next caller.
WAIT_SECONDS = 10.0


class CachedProbe:
    """`probe()` gives the problems found (none: ready); `problems()` awaits an answer
    at most MAX_AGE_SECONDS old, starting a probe in a thread of its own when there is
    none and none is running."""

    def __init__(
        self,
        probe: Callable[[], list[str]],
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._answer: tuple[float, list[str]] | None = None
        self._running: Future[list[str]] | None = None

    async def problems(self) -> list[str]:
        with self._lock:
            if self._answer is not None and self._clock() - self._answer[0] < self._max_age:
                return self._answer[1]
            if self._running is None:
                self._running = Future()
                threading.Thread(target=self._run, name="readyz-probe", daemon=True).start()
            running = self._running
        waiting = asyncio.shield(asyncio.wrap_future(running))
        try:
            return await asyncio.wait_for(waiting, WAIT_SECONDS)
        except TimeoutError:
            return [f"the probe has not answered within {WAIT_SECONDS:g}s"]

    def _run(self) -> None:
        try:
            problems = self._probe()
        except Exception as error:  # a probe that fails is an answer, not a hang
            log.warning("the readiness probe failed: %s", error)
            problems = [f"the probe failed: {type(error).__name__}"]
        with self._lock:
            self._answer = (self._clock(), problems)
            running, self._running = self._running, None
        if running is not None and not running.done():
            running.set_result(problems)

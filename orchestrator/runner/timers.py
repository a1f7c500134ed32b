"""Timers kept by one thread for the whole process: a run's timeout kills its
container from here, so following a run costs one thread, not one per concern. Each due
action runs in a short-lived thread of its own, so one that hangs (a kill the engine
never answers) delays no other."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
# An action that raised (an engine away) is tried again this much later.
RETRY_SECONDS = 5.0
# How long the end of a run waits for a timer's action in flight (a stop's grace and more).
SETTLE_SECONDS = 60.0


class Timer:
    """One action due at a time; `fired` once its action has run and done something (a timeout's
    kill of a container that had already ended on its own does not count)."""

    def __init__(self, at: float, action: Callable[[], bool], what: str) -> None:
        self.at = at
        self.action = action
        self.what = what
        self.fired = False
        self.cancelled = False
        # While the action runs: a run it kills may be seen ended before it returns.
        self._acting = threading.Event()
        self._done = threading.Event()

    def cancel(self) -> None:
        self.cancelled = True

    def settled(self, timeout: float = SETTLE_SECONDS) -> bool:
        """`fired`, once an action in flight has returned: a timeout's kill ends the run,
        and whoever sees that end must not read `fired` before the kill has said so."""
        if self._acting.is_set():
            self._done.wait(timeout)
        return self.fired


class Timers:
    """A heap of timers and the thread that runs their actions when due (started with
    the first timer). An action that raises is logged and tried again later, until it
    succeeds or its timer is cancelled."""

    def __init__(self, name: str = "timers") -> None:
        self._name = name
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def after(self, seconds: float, action: Callable[[], bool], what: str) -> Timer:
        timer = Timer(time.monotonic() + seconds, action, what)
        with self._changed:
            self._push(timer, timer.at)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
        return timer

    def __len__(self) -> int:
        with self._changed:
            return sum(1 for _, _, timer in self._heap if not timer.cancelled)

    def _push(self, timer: Timer, at: float) -> None:
        heapq.heappush(self._heap, (at, next(self._order), timer))
        self._changed.notify()

    def _loop(self) -> None:
        while True:
            with self._changed:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._changed.wait(wait)
                _, _, due = heapq.heappop(self._heap)
            if due.cancelled:
                continue
            # In a thread of its own: a kill the engine never answers must not hold up
            # every other run's deadline.
            threading.Thread(target=self._act, args=(due,), name=self._name, daemon=True).start()

    def _act(self, due: Timer) -> None:
        due._acting.set()
        try:
            due.fired = due.action()
            due._done.set()
        except Exception as error:
            due._acting.clear()
            log.warning("%s failed: %s (trying again in %.0fs)", due.what, error, RETRY_SECONDS)
            with self._changed:
                self._push(due, time.monotonic() + RETRY_SECONDS)

"""The heartbeat of the runs this process holds: proof to other schedulers that it is
alive, so that they do not adopt its runs (service/adoption.py is the other side)."""

from __future__ import annotations

import logging
import threading
import time

from orchestrator.clock import Clock, utc_now
from orchestrator.errors import OrchestratorError
from orchestrator.store.facade import Store

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 5.0


class Heartbeats:
    """One thread beats for every run this process holds (queued, starting or followed),
    so that no other scheduler adopts them; a run that is dropped is no longer beaten."""

    def __init__(
        self,
        store: Store,
        owner: str,
        interval: float = HEARTBEAT_SECONDS,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._owner = owner
        self._interval = interval
        self._clock = clock
        self._held: set[int] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, run_id: int) -> None:
        with self._lock:
            self._held.add(run_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, name="heartbeats", daemon=True)
                self._thread.start()

    def drop(self, run_id: int) -> None:
        with self._lock:
            self._held.discard(run_id)

    def held(self) -> set[int]:
        with self._lock:
            return set(self._held)

    def _beat(self) -> None:
        while True:
            time.sleep(self._interval)
            held = sorted(self.held())
            if not held:
                continue
            try:
                self._store.heartbeat(self._owner, held, self._clock())
            except OrchestratorError as error:
                log.warning("heartbeat of %d run(s) failed: %s", len(held), error)

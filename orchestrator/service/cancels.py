"""Stops that failed are tried again: a run asked to cancel whose container did not stop
(the engine refused, or went away) stays active, and the scheduler that owns it stops
it again, each in a thread of its own, until the engine says it has stopped
(orchestrator/runner/cancelling.py records it cancelled then)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.engine import Engine
from orchestrator.errors import OrchestratorError
from orchestrator.records import RunRecord
from orchestrator.runner.cancelling import stop_cancelled
from orchestrator.store.facade import Store

log = logging.getLogger(__name__)
# How often the maintenance loop looks for runs asked to cancel that still run, and how
# long after the cancel it first stops one again (the canceller's own stop, still under
# way then, is not harmed by a second: the engine stops a container once).
STOP_RETRY_SECONDS = 2.0
STOP_AGAIN_AFTER = timedelta(seconds=4)


@dataclass(eq=False, kw_only=True)
class StopRetries:
    store: Store
    engine: Engine
    owner: str
    clock: Callable[[], datetime]
    grace_seconds: int

    def __post_init__(self) -> None:
        self._stopping: set[int] = set()
        self._lock = threading.Lock()

    def tick(self, now: datetime) -> None:
        """Stop again the containers of our runs asked to cancel a while ago that have
        still not ended (none twice at once)."""
        for run in self.store.cancel_requested(self.owner):
            asked = run.cancel_requested_at
            if asked is None or now - asked < STOP_AGAIN_AFTER:
                continue
            with self._lock:
                if run.id in self._stopping:
                    continue
                self._stopping.add(run.id)
            threading.Thread(
                target=self._stop, args=(run,), name=f"stop-{run.id}", daemon=True
            ).start()

    def _stop(self, run: RunRecord) -> None:
        try:
            engine = self.engine
            stop_cancelled(self.store, lambda: engine, run, self.grace_seconds, self.clock)
            log.info(
                "run %s of %s cancelled: its container stopped",
                run.id,
                run.job,
                extra={"run": run.id, "job": run.job},
            )
        except OrchestratorError as error:
            log.warning("%s", error, extra={"run": run.id, "job": run.job})
        finally:
            with self._lock:
                self._stopping.discard(run.id)

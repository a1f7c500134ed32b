"""What the service tells those who watch it (metrics now, notifications next): a fire
claimed or skipped, a run finished. An observer that fails never harms a run."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from orchestrator.records import RunRecord

log = logging.getLogger(__name__)


class ServiceObserver(Protocol):
    def fire_claimed(self, run: RunRecord, late_seconds: float) -> None:
        """This scheduler recorded the run of a fire, `late_seconds` after its time."""

    def fire_skipped(self, run: RunRecord) -> None:
        """The fire's run was recorded as skipped (concurrency: forbid)."""

    def run_finished(self, run: RunRecord) -> None:
        """A run this scheduler followed has ended (any status)."""


class Observers:
    """Tells each observer in turn; one that raises is logged and the others still hear."""

    def __init__(self, observers: Sequence[ServiceObserver] = ()) -> None:
        self._observers = list(observers)

    def add(self, observer: ServiceObserver) -> None:
        self._observers.append(observer)

    def fire_claimed(self, run: RunRecord, late_seconds: float) -> None:
        for observer in self._observers:
            try:
                observer.fire_claimed(run, late_seconds)
            except Exception:
                log.exception("observer %r failed on a claimed fire", observer)

    def fire_skipped(self, run: RunRecord) -> None:
        for observer in self._observers:
            try:
                observer.fire_skipped(run)
            except Exception:
                log.exception("observer %r failed on a skipped fire", observer)

    def run_finished(self, run: RunRecord) -> None:
        for observer in self._observers:
            try:
                observer.run_finished(run)
            except Exception:
                log.exception("observer %r failed on a finished run", observer)

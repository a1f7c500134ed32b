"""Claiming fires: each fire becomes exactly one run. A fire is claimed by inserting its
run row; the unique (job, scheduled_for, attempt) key lets the database decide between
several schedulers. A few workers take fires from a queue, so a slow claim (a database
that is restarting) does not hold up the timetable."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from orchestrator.engine import Engine
from orchestrator.errors import DuplicateFireError, OrchestratorError
from orchestrator.policies import notify_events
from orchestrator.policies.overlap import decide_overlap
from orchestrator.records import NewRun, RunRecord, RunStatus, RunTrigger
from orchestrator.runner.cancelling import stop_cancelled
from orchestrator.service.health import LoopBeats
from orchestrator.service.observers import Observers
from orchestrator.service.timetable import Timetable
from orchestrator.settings import IDLE_BEAT_SECONDS
from orchestrator.spec import Concurrency, JobSpec
from orchestrator.store.facade import Store

log = logging.getLogger(__name__)
Fire = tuple[str, datetime, RunTrigger]


@dataclass(eq=False, kw_only=True)
class ClaimWorkers:
    store: Store
    engine: Engine
    owner: str
    timetable: Timetable
    clock: Callable[[], datetime]
    observers: Observers
    beats: LoopBeats
    stopping: threading.Event
    start_run: Callable[[RunRecord, JobSpec], None]
    is_active: Callable[[int], bool]
    stop_grace_seconds: int
    with_defaults: Callable[[JobSpec], JobSpec] = lambda spec: spec

    def __post_init__(self) -> None:
        self.fires: queue.Queue[Fire | None] = queue.Queue()
        self._threads: list[threading.Thread] = []

    def put(self, job: str, scheduled_for: datetime, trigger: RunTrigger) -> None:
        self.fires.put((job, scheduled_for, trigger))

    def start(self, count: int) -> None:
        for index in range(count):
            worker = threading.Thread(
                target=self._loop, args=(index,), name=f"fires-{index}", daemon=True
            )
            worker.start()
            self._threads.append(worker)

    def stop(self) -> None:
        for _ in self._threads:
            self.fires.put(None)

    def _loop(self, index: int) -> None:
        beat = f"claims-{index}"
        while True:
            self.beats.beat(beat)
            try:
                item = self.fires.get(timeout=IDLE_BEAT_SECONDS)
            except queue.Empty:
                continue
            if item is None or self.stopping.is_set():
                return
            job, scheduled_for, trigger = item
            try:
                self.claim_and_start(job, scheduled_for, trigger)
            except Exception:
                log.exception("fire of %s at %s failed", job, scheduled_for.isoformat())

    def _with_database_retries(self, action: Callable[[], RunRecord]) -> RunRecord | None:
        """Run a database action, riding out an outage with backoff (while not stopping)."""
        delay = 0.5
        while not self.stopping.is_set():
            try:
                return action()
            except DuplicateFireError:
                raise
            except OrchestratorError as error:
                log.warning("database unavailable (%s); retrying in %.1fs", error, delay)
                self.stopping.wait(delay)
                delay = min(delay * 2, 15)
        return None

    def claim_and_start(self, job: str, scheduled_for: datetime, trigger: RunTrigger) -> None:
        spec = self.timetable.spec(job)
        if spec is None:
            return  # disabled or deleted since the fire was queued
        new = NewRun(
            job=job,
            scheduled_for=scheduled_for,
            trigger=trigger,
            image=spec.image,
            owner=self.owner,
        )
        try:
            run = self._with_database_retries(lambda: self.store.record_run(new))
        except DuplicateFireError:
            # Another scheduler has this fire, or our own insert committed just before the
            # connection dropped (then the row is ours, and still ours to run).
            run = self.store.fire(job, scheduled_for)
            if run is None or run.owner != self.owner or run.status is not RunStatus.PENDING:
                return
            if self.is_active(run.id):
                return
        if run is None:
            return
        # How late it starts is logged when it does (service/launches.py), once.
        self.observers.fire_claimed(run, (self.clock() - scheduled_for).total_seconds())
        if self.apply_overlap(run, spec):
            self.start_run(run, spec)

    def apply_overlap(self, run: RunRecord, spec: JobSpec) -> bool:
        """False when the run was recorded as skipped (forbid)."""
        allowed = spec.concurrency is Concurrency.ALLOW
        unfinished = [] if allowed else self.store.unfinished_runs(spec.name)
        decision = decide_overlap(spec.concurrency, spec.name, run.id, unfinished)
        if decision.skip_reason is not None:
            self.store.finish_run(
                run.id,
                status=RunStatus.SKIPPED,
                finished_at=self.clock(),
                error=decision.skip_reason,
                notify=notify_events.on_end(self.with_defaults(spec)),
            )
            self.observers.fire_skipped(run)
            log.warning(
                "run %s of %s %s",
                run.id,
                spec.name,
                decision.skip_reason,
                extra={"run": run.id, "job": spec.name},
            )
            return False
        asked = {other.id for other in unfinished if other.cancel_requested_at is not None}
        for other in decision.cancel:  # replace: the old run makes way
            if other in asked:
                continue  # its stop is under way (or retried by its scheduler)
            try:
                cancelled = self.store.request_cancel(other, self.clock())
            except OrchestratorError as error:
                log.warning("could not replace run %s: %s", other, error)
                continue
            log.info("run %s of %s replaced by run %s", other, spec.name, run.id)
            if not cancelled.status.finished:
                # The stop lasts the grace (a container that ignores SIGTERM), or longer
                # (a wedged engine): not in a claim worker, whose fires it would delay.
                threading.Thread(
                    target=self._stop,
                    args=(cancelled,),
                    name=f"replace-{other}",
                    daemon=True,
                ).start()
        return decision.start

    def _stop(self, run: RunRecord) -> None:
        try:
            engine = self.engine
            stop_cancelled(self.store, lambda: engine, run, self.stop_grace_seconds, self.clock)
        except OrchestratorError as error:
            log.warning("could not stop replaced run: %s", error)

"""The scheduler service: every fire of every enabled job becomes exactly one run.

This module wires the parts and runs the maintenance loop; each part lives in its own
module: the timetable (APScheduler, in step with the database), the claim workers
(a fire becomes one run), adoption (runs of a dead scheduler), health (every loop's
progress), observers (what the metrics hear). The policies they apply are pure
functions: overlap, retries, exit outcomes, ownership, catch-up.

- Job changes and queued runs (`jobs run --detach`, retries) are picked up by the
  maintenance loop when the database tells of a change (store/changes.py: LISTEN/NOTIFY,
  PRAGMA data_version), when a queued run's due time comes, and every
  `idle_poll_seconds` in case; dead schedulers' runs by a slow poll.
- Runs we execute carry our owner id and a heartbeat, so another scheduler (or our next
  life) can adopt them.
- Runs are launched by a bounded pool in order of due time (service/launches.py), so
  an overload makes runs wait, late, instead of stalling the service.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from orchestrator.backoff import with_backoff
from orchestrator.clock import Clock, utc_now
from orchestrator.engine import Engine
from orchestrator.errors import (
    DatabaseUnavailableError,
    JobNotFoundError,
    OrchestratorError,
)
from orchestrator.hostpaths import SelfContainer
from orchestrator.policies.retention import RetentionDefaults
from orchestrator.policies.retries import plan_retry
from orchestrator.records import RunRecord, RunStatus, RunTrigger
from orchestrator.runner import DATABASE_PATIENCE_SECONDS, LaunchSettings, RunLauncher
from orchestrator.runner.identity import make_owner_id
from orchestrator.service.adoption import Adoption
from orchestrator.service.cancels import STOP_RETRY_SECONDS, StopRetries
from orchestrator.service.claims import ClaimWorkers
from orchestrator.service.delivery import DeliveryWorkers, delivery_policy
from orchestrator.service.health import LoopBeats, write_health_file
from orchestrator.service.launches import LaunchPool
from orchestrator.service.observers import Observers
from orchestrator.service.retention import HistoryPruner, RetentionTask
from orchestrator.service.startup import fire_on_start
from orchestrator.service.timetable import Timetable
from orchestrator.settings import DEFAULT_MAX_RUNNING
from orchestrator.spec import JobSpec
from orchestrator.store.facade import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceSettings:
    job_poll_seconds: float = 1.0
    pending_poll_seconds: float = 0.25
    adopt_check_seconds: float = 5.0
    # A run whose owner has not beaten for this long is adopted by another scheduler.
    stale_after_seconds: float = 30.0
    # SIGTERM: how long to wait for runs in flight; 0 leaves them to be reattached.
    shutdown_grace_seconds: float = 0.0
    health_file: Path | None = None
    health_seconds: float = 5.0
    claim_workers: int = 4
    delivery_workers: int = 4
    # Where users reach the dashboard: notifications link to the run's page there.
    public_url: str | None = None
    max_running: int = DEFAULT_MAX_RUNNING
    # SIGTERM: how long launches in flight may take to finish (none is cut in half).
    launch_finish_seconds: float = 30.0
    # With changes told (store/changes.py), the database is still read this often, in
    # case one was missed; while they cannot be told, every job_poll_seconds.
    idle_poll_seconds: float = 30.0
    # The service-wide retention rules (default: keep everything), and how often a pass runs.
    retention: RetentionDefaults = field(default_factory=RetentionDefaults)
    retention_seconds: float = 600.0


class SchedulerService:
    def __init__(
        self,
        store: Store,
        engine: Engine,
        where: SelfContainer,
        launch: LaunchSettings,
        settings: ServiceSettings,
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.owner = make_owner_id()
        # A beat every third of --adopt-after: one late beat never makes a live run of
        # ours look orphaned to another scheduler.
        beat = min(launch.heartbeat_seconds, settings.stale_after_seconds / 3)
        self.launcher = RunLauncher(
            store,
            engine,
            where,
            replace(launch, heartbeat_seconds=beat),
            owner=self.owner,
            clock=clock,
        )
        self.beats = LoopBeats()
        self.observers = Observers()
        self.launches = LaunchPool(
            launcher=self.launcher,
            clock=clock,
            beats=self.beats,
            ended=self._run_ended,
            workers=launch.max_parallel_launches,
            max_running=settings.max_running,
        )
        self._active: dict[int, str] = {}
        self._active_lock = threading.Lock()
        self._stop = threading.Event()
        self._next: dict[str, float] = {}
        self.changes = store.change_feed(settings.pending_poll_seconds, settings.job_poll_seconds)
        self._seen = -1  # the change feed's generation the last look at the database saw
        self._pending_at = 0.0  # monotonic: when the earliest queued run becomes due
        self.timetable = Timetable(lambda job, at: self.claims.put(job, at, RunTrigger.SCHEDULE))
        self.claims = ClaimWorkers(
            store=self.store,
            engine=engine,
            owner=self.owner,
            timetable=self.timetable,
            clock=clock,
            observers=self.observers,
            beats=self.beats,
            stopping=self._stop,
            start_run=lambda run, spec: self._start_run(run, spec),
            is_active=self._is_active,
            stop_grace_seconds=launch.stop_grace_seconds,
            with_defaults=self.launcher.with_defaults,
        )
        self.deliveries = DeliveryWorkers(
            store=self.store,
            owner=self.owner,
            secrets_dir=launch.secrets_dir,
            secret_policy=launch.secret_policy,
            clock=clock,
            stopping=self._stop,
            workers=settings.delivery_workers,
            public_url=settings.public_url,
            policy=delivery_policy(launch),
            changes=self.changes,
            idle_poll_seconds=settings.idle_poll_seconds,
        )
        self.stops = StopRetries(
            store=self.store,
            engine=engine,
            owner=self.owner,
            clock=clock,
            grace_seconds=launch.stop_grace_seconds,
        )
        self.adoption = Adoption(
            store=self.store,
            engine=engine,
            launcher=self.launcher,
            owner=self.owner,
            stale_after=timedelta(seconds=settings.stale_after_seconds),
            clock=clock,
            start_run=self._start_run,
            active_ids=self._active_ids,
        )

        self.retention = RetentionTask(
            HistoryPruner(
                self.store, settings.retention, self.owner, clock=clock, stopping=self._stop
            ),
            settings.retention_seconds,
        )

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        now = self.clock()
        log.info("scheduler %s starting", self.owner)
        self.changes.start()
        # A database that goes away meanwhile (a restart) is waited for, as later on:
        # each step may be done again.
        with_backoff(
            lambda: self._recover(now),
            retry_on=DatabaseUnavailableError,
            patience_seconds=DATABASE_PATIENCE_SECONDS,
            what="database unavailable",
        )
        self.launches.start()
        self.claims.start(self.settings.claim_workers)
        self.deliveries.start()
        self.retention.start()
        self.timetable.every(self.settings.health_seconds, "health", self._health_tick)
        self.timetable.start()
        log.info("scheduler %s started with %d enabled jobs", self.owner, len(self.timetable))

    def _recover(self, now: datetime) -> None:
        """What a start finds: stale leases, runs to adopt, the jobs, missed fires."""
        self._release_stale_leases(now)
        self.adoption.adopt_orphans(now)
        self.timetable.sync(self.store, now)
        for job, moment in self.timetable.missed_fires(self.store.last_fires(), now):
            self.claims.put(job, moment, RunTrigger.CATCHUP)
        window = timedelta(seconds=self.settings.stale_after_seconds)
        fire_on_start(self.store, self.timetable.specs(), now, window, self.claims.put)

    def run_forever(self) -> None:
        """Start, then keep the database and the timetable in step until stop()."""
        self.start()
        try:
            while not self._stop.is_set():
                self.changes.wait(self._seen, self.settings.pending_poll_seconds)
                if self._stop.is_set():
                    break
                self.maintain()
                self.beats.beat("maintenance")
        finally:
            self.shutdown()

    def stop(self) -> None:
        self._stop.set()
        self.changes.stop()

    def runs_in_flight(self) -> int:
        with self._active_lock:
            return len(self._active)

    def _is_active(self, run_id: int) -> bool:
        with self._active_lock:
            return run_id in self._active

    def _active_ids(self) -> set[int]:
        with self._active_lock:
            return set(self._active)

    def shutdown(self) -> None:
        """Stop firing. Runs in flight are left to be reattached, or waited for (grace)."""
        self._stop.set()
        self.changes.stop()
        self.timetable.shutdown()
        self.claims.stop()
        self.launches.stop(self.settings.launch_finish_seconds)
        # The grace is for runs that started; queued ones stay pending for the next life.
        deadline = time.monotonic() + self.settings.shutdown_grace_seconds
        while self.launches.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        with self._active_lock:
            left = dict(self._active)
        if left:
            log.info("leaving %d run(s) in flight to be reattached: %s", len(left), sorted(left))
        log.info("scheduler %s stopped", self.owner)

    # --- the maintenance loop -----------------------------------------------------------

    def _due(self, name: str, every: float) -> bool:
        now = time.monotonic()
        if now >= self._next.get(name, 0):
            self._next[name] = now + every
            return True
        return False

    def maintain(self) -> None:
        """One pass: each duty at its own pace; a failing duty is logged and retried."""
        now = self.clock()
        generation = self.changes.generation()
        changed = generation != self._seen
        self._seen = generation
        if changed:  # a change told: look now; else only when due, or in case
            self._next.pop("pending", None)
            self._next.pop("jobs", None)
        if time.monotonic() >= self._pending_at:
            self._next.pop("pending", None)
        idle = self.settings.idle_poll_seconds
        duties: list[tuple[str, float, Callable[[], None]]] = [
            ("pending", idle, lambda: self._start_pending(now)),
            ("jobs", idle, lambda: self.timetable.sync(self.store, now)),
            ("adopt", self.settings.adopt_check_seconds, lambda: self.adoption.adopt_orphans(now)),
            ("saturation", 1.0, self.launches.tell_saturation),
            ("leftovers", 10.0, lambda: self.adoption.sweep_leftovers(now)),
            ("stops", STOP_RETRY_SECONDS, lambda: self.stops.tick(now)),
        ]
        for name, every, duty in duties:
            if name == "stops" and not self.runs_in_flight():
                continue  # only our runs in flight are stopped again
            if not self._due(name, every):
                continue
            try:
                duty()
            except OrchestratorError as error:
                log.warning("%s: %s (will retry)", name, error)
                self._next[name] = time.monotonic() + min(every * 4, 10)
            except Exception:
                log.exception("%s failed (will retry)", name)
                self._next[name] = time.monotonic() + min(every * 4, 10)

    def _health_tick(self) -> None:
        """Runs in APScheduler's own thread: if that loop is stuck, the file goes stale;
        if another loop is, its stamp in the file does."""
        self.beats.beat("fires")
        if self.settings.health_file is not None:
            write_health_file(
                self.settings.health_file,
                owner=self.owner,
                jobs=len(self.timetable),
                active_runs=self.runs_in_flight(),
                beats=self.beats,
                launches=self.launches.stats().to_dict(),
            )

    # --- runs -----------------------------------------------------------------------------

    def _start_run(
        self, run: RunRecord, spec: JobSpec, body: Callable[[], RunRecord] | None = None
    ) -> None:
        """Hand a run of ours to the launch pool (or, with a body, follow it there)."""
        with self._active_lock:
            self._active[run.id] = spec.name
        if body is None:
            self.launches.submit(run, spec)
        else:
            self.launches.follow(run, spec, body)

    def _run_ended(self, run: RunRecord, spec: JobSpec, finished: RunRecord | None) -> None:
        try:
            if finished is None:
                return  # an error of ours, logged; adoption takes the run up again
            self.observers.run_finished(finished)
            log.info(
                "run %s of %s %s",
                run.id,
                spec.name,
                finished.status.value,
                extra={
                    "run": run.id,
                    "job": spec.name,
                    "status": finished.status.value,
                    "exit_code": finished.exit_code,
                },
            )
            self._tell_retry(finished, spec)
        finally:
            with self._active_lock:
                self._active.pop(run.id, None)

    def _tell_retry(self, finished: RunRecord, spec: JobSpec) -> None:
        """Log the retry its end queued (in the end's own transaction: Store.finish_run)."""
        retry = plan_retry(finished, spec, finished.finished_at or self.clock())
        if retry is None:
            return
        log.info(
            "run %s of %s will be retried (attempt %d) at %s",
            finished.id,
            spec.name,
            retry.attempt,
            retry.due_at.isoformat() if retry.due_at else "once",
            extra={"run": finished.id, "job": spec.name},
        )

    # --- queued runs (jobs run --detach, retries) ------------------------------------------

    def _start_pending(self, now: datetime) -> None:
        self._pending_at = time.monotonic() + self.settings.idle_poll_seconds
        runs = self.store.due_pending(now)
        if len(runs) >= 100:  # a page of them: the next page at the next pass
            self._pending_at = 0.0
        else:
            due, _ = self.store.next_wakeups()
            if due is not None:
                wait = max((due - self.clock()).total_seconds(), 0.0)
                self._pending_at = min(self._pending_at, time.monotonic() + wait)
        for run in runs:
            if not self.store.claim_pending(run.id, self.owner, self.clock()):
                continue
            spec = self._spec_for(run)
            if spec is None:
                continue
            # A chained run obeys its job's concurrency policy, as a fire does.
            if run.trigger is RunTrigger.CHAIN and not self.claims.apply_overlap(run, spec):
                continue
            self._start_run(run, spec)

    def _spec_for(self, run: RunRecord) -> JobSpec | None:
        spec = self.timetable.spec(run.job)
        if spec is not None:
            return spec
        try:  # a manual run of a disabled job still runs
            return self.store.job(run.job).spec
        except JobNotFoundError:
            self.store.finish_run(
                run.id,
                status=RunStatus.FAILED,
                finished_at=self.clock(),
                error=f"job {run.job!r} no longer exists",
            )
            return None

    def _release_stale_leases(self, now: datetime) -> None:
        released = self.store.release_stale_leases(now)
        if released:
            log.info("released %d stale port lease(s)", released)

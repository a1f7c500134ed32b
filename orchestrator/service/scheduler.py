"""The scheduler service: every fire of every enabled job becomes exactly one run.

- APScheduler 3 keeps the timetable (our triggers, no misfire grace, no coalescing).
- A fire is claimed by inserting its run row; the unique (job, scheduled_for, attempt)
  key lets the database decide between several schedulers.
- Job changes, queued runs (`jobs run --detach`, retries) and dead schedulers' runs are
  picked up by a maintenance loop that polls the database.
- Runs we execute carry our owner id and a heartbeat; a run whose owner died (its
  heartbeat went stale, or it was an earlier life of this very process) is adopted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler

from orchestrator.catchup import plan_catchup
from orchestrator.engine import Engine
from orchestrator.errors import DuplicateFireError, JobNotFoundError, OrchestratorError
from orchestrator.hostpaths import SelfContainer
from orchestrator.identity import make_owner_id
from orchestrator.launcher import LaunchSettings, RunLauncher
from orchestrator.operations.runs import cancel_run
from orchestrator.records import JobRecord, NewRun, RunRecord, RunStatus, RunTrigger
from orchestrator.service.apscheduler_glue import INLINE_PREFIX, FireExecutor, ScheduleTrigger
from orchestrator.service.health import LoopBeats
from orchestrator.service.observers import LATE_SECONDS, Observers
from orchestrator.spec import Concurrency, JobSpec
from orchestrator.store.database import Database
from orchestrator.store.facade import Store

log = logging.getLogger(__name__)
CLAIM_IDLE_BEAT_SECONDS = 1.0
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


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


@dataclass
class _Scheduled:
    revision: int
    spec: JobSpec
    updated_at: datetime


class SchedulerService:
    def __init__(
        self,
        database: Database,
        engine: Engine,
        where: SelfContainer,
        launch: LaunchSettings,
        settings: ServiceSettings,
        clock: Clock = utc_now,
    ) -> None:
        self.database = database
        self.store = Store(database)
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.owner = make_owner_id()
        self.launcher = RunLauncher(database, engine, where, launch, owner=self.owner)
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": FireExecutor(self._enqueue_fire)},
            job_defaults={"misfire_grace_time": None, "coalesce": False, "max_instances": 1},
        )
        self._jobs: dict[str, _Scheduled] = {}
        self._signature: tuple[object, ...] | None = None
        self._fires: queue.Queue[tuple[str, datetime, RunTrigger] | None] = queue.Queue()
        self._active: dict[int, str] = {}
        self._active_lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._next: dict[str, float] = {}
        self.beats = LoopBeats()
        self.observers = Observers()

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        now = self.clock()
        log.info("scheduler %s starting", self.owner)
        self._release_stale_leases(now)
        self._adopt_orphans(now)
        self._sync_jobs(start=now)
        self._catch_up(now)
        for index in range(self.settings.claim_workers):
            worker = threading.Thread(
                target=self._claim_loop, args=(index,), name=f"fires-{index}", daemon=True
            )
            worker.start()
            self._workers.append(worker)
        self.scheduler.add_job(
            self._health_tick,
            "interval",
            seconds=self.settings.health_seconds,
            id=f"{INLINE_PREFIX}health",
            next_run_time=datetime.now(UTC),
        )
        self.scheduler.start()
        log.info("scheduler %s started with %d enabled jobs", self.owner, len(self._jobs))

    def run_forever(self) -> None:
        """Start, then keep the database and the timetable in step until stop()."""
        self.start()
        try:
            while not self._stop.wait(self.settings.pending_poll_seconds):
                self.maintain()
                self.beats.beat("maintenance")
        finally:
            self.shutdown()

    def stop(self) -> None:
        self._stop.set()

    def runs_in_flight(self) -> int:
        with self._active_lock:
            return len(self._active)

    def shutdown(self) -> None:
        """Stop firing. Runs in flight are left to be reattached, or waited for (grace)."""
        self._stop.set()
        # wait=False: APScheduler 3 can deadlock joining its own thread from a listener.
        with contextlib.suppress(SchedulerNotRunningError):
            self.scheduler.shutdown(wait=False)
        for _ in self._workers:
            self._fires.put(None)
        deadline = time.monotonic() + self.settings.shutdown_grace_seconds
        while self._active and time.monotonic() < deadline:
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
        duties: list[tuple[str, float, Callable[[], None]]] = [
            ("pending", self.settings.pending_poll_seconds, lambda: self._start_pending(now)),
            ("jobs", self.settings.job_poll_seconds, lambda: self._sync_jobs()),
            ("adopt", self.settings.adopt_check_seconds, lambda: self._adopt_orphans(now)),
        ]
        for name, every, duty in duties:
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
        if self.settings.health_file is None:
            return
        with self._active_lock:
            active = len(self._active)
        data = {
            "owner": self.owner,
            "time": datetime.now(UTC).isoformat(),
            "jobs": len(self._jobs),
            "active_runs": active,
            "loops": {loop: moment.isoformat() for loop, moment in self.beats.loops().items()},
        }
        target = self.settings.health_file
        temporary = target.with_name(f".{target.name}.tmp")
        try:
            temporary.write_text(json.dumps(data))
            temporary.replace(target)
        except OSError as error:
            log.warning("cannot write the health file %s: %s", target, error)

    # --- jobs -----------------------------------------------------------------------------

    def _sync_jobs(self, start: datetime | None = None) -> None:
        """Bring the timetable in line with the enabled jobs in the database."""
        signature = self.store.jobs_signature()
        if signature == self._signature:
            return
        records = self.store.enabled_jobs()
        wanted = {record.name: record for record in records}
        now = start or self.clock()
        for name in list(self._jobs):
            if name not in wanted:
                self._unschedule(name)
        for name, record in wanted.items():
            current = self._jobs.get(name)
            if current is None or current.revision != record.revision:
                self._schedule(record, now)
        self._signature = signature

    def _schedule(self, record: JobRecord, now: datetime) -> None:
        spec = record.spec
        first = spec.trigger.next_after(now)
        if self._jobs.pop(spec.name, None) is not None:
            self._remove_aps_job(spec.name)
        self._jobs[spec.name] = _Scheduled(record.revision, spec, record.updated_at)
        if first is None:
            return
        self.scheduler.add_job(
            _never_called,
            trigger=ScheduleTrigger(spec.trigger),
            id=spec.name,
            name=spec.name,
            next_run_time=first,
            replace_existing=True,
        )
        log.info(
            "scheduled %s (%s, %s), next at %s",
            spec.name,
            spec.schedule,
            spec.timezone,
            first.isoformat(),
            extra={"job": spec.name},
        )

    def _unschedule(self, name: str) -> None:
        self._jobs.pop(name, None)
        self._remove_aps_job(name)
        log.info("unscheduled %s", name, extra={"job": name})

    def _remove_aps_job(self, name: str) -> None:
        with contextlib.suppress(JobLookupError):  # not scheduled (no more fires)
            self.scheduler.remove_job(name)

    # --- fires ------------------------------------------------------------------------

    def _enqueue_fire(self, job: str, scheduled_for: datetime) -> None:
        self._fires.put((job, scheduled_for, RunTrigger.SCHEDULE))

    def _catch_up(self, now: datetime) -> None:
        """Missed fires while no scheduler ran, as each job's catch-up policy says."""
        last_fires = self.store.last_fires()
        for name, scheduled in list(self._jobs.items()):
            last = last_fires.get(name)
            if last is None:
                continue  # a job with no history has missed nothing
            # Fires from before the job was (re-)enabled or changed were never owed.
            since = max(last, scheduled.updated_at)
            spec = scheduled.spec
            for moment in plan_catchup(spec.trigger, spec.catchup, since, now):
                self._fires.put((name, moment, RunTrigger.CATCHUP))

    def _claim_loop(self, index: int) -> None:
        beat = f"claims-{index}"
        while True:
            self.beats.beat(beat)
            try:  # wake up now and then, so that an idle worker shows it is alive
                item = self._fires.get(timeout=CLAIM_IDLE_BEAT_SECONDS)
            except queue.Empty:
                continue
            if item is None or self._stop.is_set():
                return
            job, scheduled_for, trigger = item
            try:
                self._claim_and_start(job, scheduled_for, trigger)
            except Exception:
                log.exception("fire of %s at %s failed", job, scheduled_for.isoformat())

    def _with_database_retries(self, action: Callable[[], RunRecord]) -> RunRecord | None:
        """Run a database action, riding out an outage with backoff (while not stopping)."""
        delay = 0.5
        while not self._stop.is_set():
            try:
                return action()
            except DuplicateFireError:
                raise
            except OrchestratorError as error:
                log.warning("database unavailable (%s); retrying in %.1fs", error, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 15)
        return None

    def _claim_and_start(self, job: str, scheduled_for: datetime, trigger: RunTrigger) -> None:
        scheduled = self._jobs.get(job)
        if scheduled is None:
            return  # disabled or deleted since the fire was queued
        spec = scheduled.spec
        new = NewRun(
            job=job,
            scheduled_for=scheduled_for,
            trigger=trigger,
            image=spec.image,
            owner=self.owner,
        )

        def claim() -> RunRecord:
            return self.store.record_run(new)

        try:
            run = self._with_database_retries(claim)
        except DuplicateFireError:
            # Another scheduler has this fire, or our own insert committed just before the
            # connection dropped (then the row is ours, and still ours to run).
            run = self.store.fire(job, scheduled_for)
            if run is None or run.owner != self.owner or run.status is not RunStatus.PENDING:
                return
            with self._active_lock:
                if run.id in self._active:
                    return
        if run is None:
            return
        late = (self.clock() - scheduled_for).total_seconds()
        self.observers.fire_claimed(run, late)
        if late > LATE_SECONDS:
            log.warning(
                "run %s of %s starts %.1fs late",
                run.id,
                job,
                late,
                extra={"run": run.id, "job": job, "late_seconds": round(late, 3)},
            )
        if not self._apply_concurrency(run, spec):
            return
        self._start_run(run, spec)

    def _apply_concurrency(self, run: RunRecord, spec: JobSpec) -> bool:
        """False when the run was recorded as skipped (forbid)."""
        if spec.concurrency is Concurrency.ALLOW:
            return True
        others = [r for r in self.store.unfinished_runs(spec.name) if r.id != run.id]
        if not others:
            return True
        if spec.concurrency is Concurrency.FORBID:
            ids = ", ".join(str(other.id) for other in others)
            self.store.finish_run(
                run.id,
                status=RunStatus.SKIPPED,
                finished_at=self.clock(),
                error=f"skipped: run {ids} of {spec.name} still running (concurrency: forbid)",
            )
            self.observers.fire_skipped(run)
            log.warning(
                "run %s of %s skipped: run %s still running",
                run.id,
                spec.name,
                ids,
                extra={"run": run.id, "job": spec.name},
            )
            return False
        for other in others:  # replace: the old run makes way
            try:
                cancel_run(
                    self.store,
                    lambda: self.engine,
                    other.id,
                    self.launcher.settings.stop_grace_seconds,
                    self.clock(),
                )
                log.info("run %s of %s replaced by run %s", other.id, spec.name, run.id)
            except OrchestratorError as error:
                log.warning("could not replace run %s: %s", other.id, error)
        return True

    def _start_run(
        self, run: RunRecord, spec: JobSpec, body: Callable[[], RunRecord] | None = None
    ) -> None:
        with self._active_lock:
            self._active[run.id] = spec.name
        thread = threading.Thread(
            target=self._run_body, args=(run, spec, body), name=f"run-{run.id}", daemon=True
        )
        thread.start()

    def _run_body(
        self, run: RunRecord, spec: JobSpec, body: Callable[[], RunRecord] | None
    ) -> None:
        try:
            finished = body() if body is not None else self.launcher.execute(run, spec)
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
            self._maybe_retry(finished, spec)
        except Exception:
            log.exception("run %s of %s failed inside the scheduler", run.id, spec.name)
        finally:
            with self._active_lock:
                self._active.pop(run.id, None)

    def _maybe_retry(self, finished: RunRecord, spec: JobSpec) -> None:
        if finished.status not in (RunStatus.FAILED, RunStatus.TIMED_OUT):
            return
        if finished.trigger is RunTrigger.MANUAL or finished.attempt > spec.retries.count:
            return
        due = (finished.finished_at or self.clock()) + spec.retries.backoff
        retry = NewRun(
            job=spec.name,
            scheduled_for=finished.scheduled_for,
            trigger=RunTrigger.RETRY,
            attempt=finished.attempt + 1,
            first_run_id=finished.first_run_id or finished.id,
            image=spec.image,
            due_at=due,
        )
        try:
            queued = self.store.record_run(retry)
            log.info(
                "run %s of %s will be retried as run %s at %s",
                finished.id,
                spec.name,
                queued.id,
                due.isoformat(),
            )
        except DuplicateFireError:
            pass  # another scheduler queued it

    # --- queued runs (jobs run --detach, retries) ------------------------------------------

    def _start_pending(self, now: datetime) -> None:
        for run in self.store.due_pending(now):
            if not self.store.claim_pending(run.id, self.owner, self.clock()):
                continue
            spec = self._spec_for(run)
            if spec is None:
                continue
            self._start_run(run, spec)

    def _spec_for(self, run: RunRecord) -> JobSpec | None:
        scheduled = self._jobs.get(run.job)
        if scheduled is not None:
            return scheduled.spec
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

    # --- ownership ----------------------------------------------------------------------

    def _owner_is_dead(self, run: RunRecord, now: datetime) -> bool:
        host, _, rest = (run.owner or "").partition(":")
        pid_text, _, _token = rest.partition(":")
        if host == socket.gethostname() and pid_text.isdigit():
            pid = int(pid_text)
            if pid == os.getpid():
                return True  # same pid, other token: an earlier life of this process
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                pass
        beat = run.heartbeat_at
        stale = timedelta(seconds=self.settings.stale_after_seconds)
        return beat is None or now - beat > stale

    def _adopt_orphans(self, now: datetime) -> None:
        candidates, ours = self.store.adoption_candidates(self.owner)
        # Our own runs that no thread of ours follows (a write that failed mid-outage).
        grace = timedelta(seconds=self.settings.stale_after_seconds)
        with self._active_lock:
            forgotten = [r for r in ours if r.id not in self._active and now - r.created_at > grace]
        for run in forgotten:
            log.warning(
                "run %s of %s lost its thread; taking it up again",
                run.id,
                run.job,
                extra={"run": run.id, "job": run.job},
            )
            self._reattach(run)
        for run in candidates:
            if not self._owner_is_dead(run, now):
                continue
            if not self.store.adopt(run, self.owner, self.clock()):
                continue
            log.warning(
                "adopting run %s of %s from %s",
                run.id,
                run.job,
                run.owner,
                extra={"run": run.id, "job": run.job},
            )
            self._reattach(run)

    def _reattach(self, run: RunRecord) -> None:
        try:
            spec: JobSpec | None = self.store.job(run.job).spec
        except JobNotFoundError:
            spec = None
        container_id = run.container_id or self._find_container(run)
        if container_id is None:
            if run.status is RunStatus.PENDING and spec is not None:
                self._start_run(run, spec)  # its owner died before creating a container
            else:
                self.store.finish_run(
                    run.id,
                    status=RunStatus.LOST,
                    finished_at=self.clock(),
                    error="its scheduler died and no container of it was found",
                )
            return
        if spec is None:
            from orchestrator.spec import parse_job

            spec = parse_job({"name": run.job, "schedule": "@daily", "image": run.image or "-"})
        final_spec = spec
        self._start_run(
            run, spec, body=lambda: self.launcher.reattach(run, final_spec, container_id)
        )

    def _find_container(self, run: RunRecord) -> str | None:
        for workload in self.engine.managed(run_id=run.id):
            if workload.run_id == run.id and workload.job == run.job:
                return workload.handle
        return None

    def _release_stale_leases(self, now: datetime) -> None:
        released = self.store.release_stale_leases(now)
        if released:
            log.info("released %d stale port lease(s)", released)


def _never_called() -> None:  # pragma: no cover - FireExecutor hands fires over instead
    raise AssertionError("fires are handed to the service, not run by APScheduler")

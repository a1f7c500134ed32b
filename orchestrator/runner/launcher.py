"""One run of one job: a sibling container from pending to its end, all of it recorded.

pending -> running -> succeeded | failed | timed_out | cancelled. Whatever happens, the
run row ends in a final status, its port leases are released and its container removed
(unless kept for debugging).

A run is launched (`launch`: its container created and started, starting.py) and then
followed (`follow`: its output read to the end, its exit recorded, following.py); the
service does the two in different threads, so that launches are bounded by a pool and
following a run costs one thread. At most `max_parallel_launches` create and start calls
are in flight at once, and as many remove calls: a slow remove holds up no launch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import TypeVar

from orchestrator.backoff import with_backoff
from orchestrator.clock import Clock, utc_now
from orchestrator.engine import Engine
from orchestrator.engine.errors import EngineError
from orchestrator.errors import DatabaseUnavailableError, OrchestratorError, TakenOverError
from orchestrator.hostpaths import SelfContainer
from orchestrator.masking import OutputMasker
from orchestrator.policies import chains, notify_events
from orchestrator.policies.columns import REASON_LENGTH, fit_head, fit_text
from orchestrator.policies.retries import plan_retry
from orchestrator.records import NewRun, RunRecord, RunStatus, RunTrigger
from orchestrator.runner.exec_run import (
    EXIT_NO_TARGET,
    ExecTargetError,
    describe_target,
    start_exec,
    vanished_exec,
)
from orchestrator.runner.following import Follower, OutputSink
from orchestrator.runner.heartbeats import Heartbeats
from orchestrator.runner.identity import make_owner_id
from orchestrator.runner.launch_settings import LaunchSettings
from orchestrator.runner.port_leaser import PortLeaser
from orchestrator.runner.secretfiles import SecretUnavailableError, load_launch_secrets
from orchestrator.runner.starting import ContainerStarter
from orchestrator.runner.timers import Timers
from orchestrator.spec import JobSpec
from orchestrator.spec.model import JobKind
from orchestrator.store.facade import Store

log = logging.getLogger(__name__)
# How long a run waits for a database that went away before giving up.
DATABASE_PATIENCE_SECONDS = 600
T = TypeVar("T")


@dataclass
class Launched:
    """A run whose container has started: what following it needs."""

    run: RunRecord
    spec: JobSpec
    container_id: str
    masker: OutputMasker
    # When the engine said it started, and the host ports it publishes: recorded by
    # its follower, so that a launch slot goes on to the next launch at once.
    started_at: datetime
    ports: dict[str, int]
    # Every container made for the run (to remove at its end).
    created: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NotStarted:
    """A run that ended before its container started (it could not start: failed, with
    the reason): its final record."""

    run: RunRecord


def short_end_reason(why: Exception, reason: object) -> str:
    """The error of an end written short: why the full one could not be, then the
    run's own reason (`exit status 1`)."""
    said = fit_head(fit_text(str(why) or type(why).__name__), REASON_LENGTH)
    own = f" ({fit_text(str(reason))})" if reason else ""
    return f"could not record the full end: {said}{own}"


class RunLauncher:
    def __init__(
        self,
        store: Store,
        engine: Engine,
        where: SelfContainer,
        settings: LaunchSettings,
        owner: str | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.engine = engine
        self.where = where
        self.settings = settings
        self.clock = clock
        # Runs we record carry this id and a heartbeat while we follow them, so that a
        # scheduler can adopt them if this process dies.
        self.owner = owner or make_owner_id()
        self.heartbeats = Heartbeats(store, self.owner, settings.heartbeat_seconds, clock)
        self.timers = Timers("run-timeouts")
        # Bound the create and start calls in flight, and apart the removes (they shared
        # one bound, and launches waited behind the removes of runs that had ended).
        self.engine_calls = threading.BoundedSemaphore(settings.max_parallel_launches)
        self.removals = threading.BoundedSemaphore(settings.max_parallel_launches)
        self.leaser = PortLeaser(store, engine, settings.port_pool, settings.port_host_ip, clock)
        self.starter = ContainerStarter(
            engine,
            self.leaser,
            where,
            settings,
            engine_calls=self.engine_calls,
            record_container=self._record_container,
            remove=self._remove,
        )
        self.follower = Follower(engine, self.timers, settings, self._finish)

    # --- recording ----------------------------------------------------------------------

    def queue(
        self,
        spec: JobSpec,
        trigger: RunTrigger,
        scheduled_for: datetime | None = None,
    ) -> RunRecord:
        """Record a pending run (for a manual run: now)."""
        return self.store.record_run(
            NewRun(
                job=spec.name,
                scheduled_for=scheduled_for or self.clock(),
                trigger=trigger,
                image=spec.image,
                owner=self.owner,
            )
        )

    def with_defaults(self, spec: JobSpec) -> JobSpec:
        """The job as its notifications see it: the service's receivers when it has none."""
        if spec.notify or not self.settings.default_notify:
            return spec
        return replace(spec, notify=self.settings.default_notify)

    def _finish(
        self, run_id: int, status: RunStatus, spec: JobSpec | None = None, **fields: object
    ) -> RunRecord:
        """Record the run's end, and (in the same transaction) the notifications of it,
        the runs its chains start and its retry. An end that cannot be written (a value
        the database refuses, a bug) is tried again, then written short, saying why: a
        run never stays `running` with no container."""
        finished_at = self.clock()
        notify = notify_events.on_end(self.with_defaults(spec)) if spec is not None else None
        chain = chains.on_end(spec) if spec is not None else None
        retry = None
        if spec is not None:
            job = spec

            def retry(record: RunRecord) -> NewRun | None:
                return plan_retry(record, job, finished_at)

        def write() -> RunRecord:
            return self.store.finish_run(
                run_id,
                status=status,
                finished_at=finished_at,
                notify=notify,
                chain=chain,
                retry=retry,
                owner=self.owner,
                **fields,
            )

        def write_short(why: Exception) -> RunRecord:
            return self.store.finish_run(
                run_id,
                status=status,
                finished_at=finished_at,
                retry=retry,
                owner=self.owner,
                exit_code=fields.get("exit_code"),
                error=short_end_reason(why, fields.get("error")),
            )

        return self._persist_end(run_id, write, write_short)

    def _persist_end(
        self,
        run_id: int,
        write: Callable[[], RunRecord],
        write_short: Callable[[Exception], RunRecord],
    ) -> RunRecord:
        """`write()`, retried through an outage, then once more on any other error;
        then `write_short(error)`, the end without its output, notifications or chains."""
        for attempt in (1, 2):
            try:
                return self._persist(write)
            except (TakenOverError, DatabaseUnavailableError):
                raise  # another's to end; or no database to write even a short end to
            except Exception as error:
                failure = error
                log.warning(
                    "run %s: recording its end failed (attempt %d): %s",
                    run_id,
                    attempt,
                    error,
                    extra={"run": run_id},
                )
        log.error(
            "run %s: its full end cannot be recorded; recording it without its output, "
            "notifications and chained runs",
            run_id,
            extra={"run": run_id},
        )
        return self._persist(lambda: write_short(failure))

    def _record_container(self, run_id: int, container_id: str, image_id: str) -> bool:
        """False when another scheduler adopted the run meanwhile."""
        write = partial(self.store.set_container, run_id, container_id, image_id, self.owner)
        return self._persist(write)

    def _persist(self, write: Callable[[], T]) -> T:
        """A database write the run's record depends on, retried through a database
        outage (a restart of PostgreSQL), so that no run is left without its end."""
        return with_backoff(
            write,
            retry_on=DatabaseUnavailableError,
            patience_seconds=DATABASE_PATIENCE_SECONDS,
            what="database unavailable",
        )

    # --- running ------------------------------------------------------------------------

    def execute(
        self,
        run: RunRecord,
        spec: JobSpec,
        on_output: OutputSink | None = None,
        on_running: Callable[[RunRecord], None] | None = None,
    ) -> RunRecord:
        """Run the job's container to its end and record it. Never raises for a job's
        own failure: that is the run's status. Infrastructure failures fail the run."""
        try:
            launched = self.launch(run, spec)
        except TakenOverError:  # adopted by a scheduler: as it stands now
            return self.store.run(run.id)
        if isinstance(launched, NotStarted):
            return launched.run
        return self.follow(launched, on_output, on_running)

    def launch(self, run: RunRecord, spec: JobSpec) -> Launched | NotStarted:
        """Create and start the run's container: what following it needs (its start is
        recorded by `follow`), or the run's final record when it could not start.
        Raises TakenOverError when another scheduler adopted the run meanwhile (nothing
        is recorded here)."""
        # Every container made for this run, the moment the engine made it: whatever
        # interrupts the start (Ctrl-C, SIGTERM, an error), they are removed.
        created: list[str] = []
        self.heartbeats.hold(run.id)
        launched: Launched | RunRecord | None = None
        taken_over = False
        try:
            launched = self._guarded(run, spec, lambda: self._launch(run, spec, created))
            return launched if isinstance(launched, Launched) else NotStarted(launched)
        except TakenOverError as error:
            log.warning("%s; not started here", error, extra={"run": run.id, "job": spec.name})
            taken_over = True
            raise
        finally:
            if not isinstance(launched, Launched):
                # A job without ports leased none: no write for it.
                self._clean_up(run.id, created, release_leases=not taken_over and bool(spec.ports))

    def follow(
        self,
        launched: Launched,
        on_output: OutputSink | None = None,
        on_running: Callable[[RunRecord], None] | None = None,
    ) -> RunRecord:
        """Record a launched run's start (`on_running` is told then), follow it to its
        end and record that; its container is removed."""
        run, spec = launched.run, launched.spec
        timeout = spec.timeout.total_seconds() if spec.timeout else None
        finished: RunRecord | None = None

        def to_the_end() -> RunRecord:
            if self._mark_running(launched) and on_running is not None:
                on_running(run)
            return self.follower.follow(
                run, spec, launched.container_id, on_output, timeout, launched.masker
            )

        try:
            finished = self._guarded(run, spec, to_the_end)
            return finished
        finally:
            # A run adopted while we followed it (we looked dead) is the adopter's to end:
            # its container and its leases stay for it.
            ours = finished is None or finished.owner in (None, self.owner)
            self._clean_up(
                run.id,
                launched.created if ours else [],
                release_leases=ours and bool(spec.ports),
            )

    def skip(self, run: RunRecord, spec: JobSpec, reason: str) -> RunRecord:
        """Record a run that will not start (it missed its start deadline) as skipped."""
        try:
            return self._finish(run.id, RunStatus.SKIPPED, spec, error=reason)
        finally:
            self.heartbeats.drop(run.id)

    def reattach(self, run: RunRecord, spec: JobSpec, container_id: str) -> RunRecord:
        """Finish the record of a run whose container a dead scheduler left behind:
        follow it if it still runs, else read its exit code and output."""
        self.heartbeats.hold(run.id)
        try:
            state = self.engine.state(container_id)
            if state is None:
                gone = vanished_exec(self.engine, container_id)
                return self._finish(
                    run.id,
                    RunStatus.LOST,
                    spec,
                    error=gone
                    or f"container {container_id[:12]} vanished while no scheduler watched it",
                )
            self.store.mark_running(run.id, started_at=self.clock(), ports=run.ports)
            timeout = None
            if spec.timeout is not None:
                started = run.started_at or self.clock()
                elapsed = (self.clock() - started).total_seconds()
                timeout = max(spec.timeout.total_seconds() - elapsed, 0.001)
            return self.follower.follow(
                run, spec, container_id, None, timeout, self._masker_for(spec)
            )
        finally:
            self._clean_up(run.id, [container_id])

    def _launch(self, run: RunRecord, spec: JobSpec, created: list[str]) -> Launched | RunRecord:
        if spec.kind is JobKind.EXEC:
            return self._launch_exec(run, spec, created)
        started = self.starter.start(run, spec, created)
        started_at = self.clock()
        masker = OutputMasker(started.masked)
        return Launched(run, spec, started.handle, masker, started_at, started.ports, created)

    def _launch_exec(
        self, run: RunRecord, spec: JobSpec, created: list[str]
    ) -> Launched | RunRecord:
        try:
            with self.engine_calls:
                started = start_exec(self.engine, run, spec, self.settings, self.where, created)
        except ExecTargetError as error:
            return self._finish(
                run.id, RunStatus.FAILED, spec, exit_code=EXIT_NO_TARGET, error=str(error)
            )
        if not self._record_container(run.id, started.handle, describe_target(started.target)):
            self.engine.kill(started.handle)
            raise TakenOverError(f"run {run.id} was adopted by another scheduler")
        masker = OutputMasker(started.masked)
        return Launched(run, spec, started.handle, masker, self.clock(), {}, created)

    def _mark_running(self, launched: Launched) -> bool:
        """Record the run's start (in its follower: a launch slot spent a fifth of its
        time on this write); False, and its container killed, if it was cancelled
        meanwhile."""

        def mark() -> bool:
            return self.store.mark_running(
                launched.run.id,
                started_at=launched.started_at,
                ports=launched.ports,
                notify=notify_events.on_start(self.with_defaults(launched.spec)),
            )

        if self._persist(mark):
            return True
        self.engine.kill(launched.container_id)  # cancelled while we were starting it
        return False

    def _guarded(self, run: RunRecord, spec: JobSpec, step: Callable[[], T]) -> T | RunRecord:
        """`step()`; an error ends the run: failed with the reason (the error is ours,
        not the job's), or cancelled by Ctrl-C, which goes on up."""
        try:
            return step()
        except TakenOverError:
            raise
        except OrchestratorError as error:
            log.info(
                "run %s of %s failed: %s",
                run.id,
                spec.name,
                error,
                extra={"run": run.id, "job": spec.name},
            )
            return self._finish(run.id, RunStatus.FAILED, spec, error=str(error))
        except KeyboardInterrupt:
            self._finish(run.id, RunStatus.CANCELLED, spec, error="interrupted")
            raise
        except Exception as error:
            log.exception("run %s of %s: internal error", run.id, spec.name)
            self._finish(run.id, RunStatus.FAILED, spec, error=f"internal error: {error!r}")
            raise

    def _clean_up(self, run_id: int, created: list[str], *, release_leases: bool = True) -> None:
        self.heartbeats.drop(run_id)
        if release_leases:
            self.leaser.release(run_id)
        if not self.settings.keep_containers:
            for made in created:
                self._remove(made)

    def _remove(self, container_id: str) -> None:
        try:
            with self.removals:
                self.engine.remove(container_id)
        except EngineError as error:
            log.warning("could not remove container %s: %s", container_id[:12], error)

    def _masker_for(self, spec: JobSpec) -> OutputMasker | None:
        """The masker of a run we did not start; None when its secrets cannot be read
        again here, so its output cannot be masked and is not kept."""
        try:
            return OutputMasker(load_launch_secrets(spec, self.settings.secrets_dir).masked)
        except SecretUnavailableError as error:
            log.warning("output of a run of %s withheld: %s", spec.name, error)
            return None

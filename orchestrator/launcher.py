"""One run of one job: a sibling container from pending to its end, all of it recorded.

pending -> running -> succeeded | failed | timed_out | cancelled. Whatever happens, the
run row ends in a final status, its port leases are released and its container removed
(unless kept for debugging).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from orchestrator.engine import (
    JOB_LABEL,
    MANAGED_LABEL,
    RUN_LABEL,
    ContainerExit,
    ContainerSpec,
    DockerEngine,
)
from orchestrator.engine.errors import (
    ContainerGoneError,
    EngineError,
    EngineUnavailableError,
    NetworkNotFoundError,
    PortAllocatedError,
)
from orchestrator.errors import DatabaseUnavailableError, OrchestratorError
from orchestrator.hostpaths import MountPlan, SelfContainer, translate_volumes
from orchestrator.identity import make_owner_id
from orchestrator.leases import PortLeaser
from orchestrator.output import TailBuffer
from orchestrator.ports import PinnedPortTakenError, PortPoolExhaustedError, PortRange
from orchestrator.records import NewRun, RunRecord, RunStatus, RunTrigger
from orchestrator.retry import with_backoff
from orchestrator.safety import SOCKET_PATHS, check_safety
from orchestrator.spec import JobSpec
from orchestrator.store.database import Database
from orchestrator.store.runs import RunRepository
from orchestrator.units import format_duration, format_size

log = logging.getLogger(__name__)
OutputSink = Callable[[bytes], None]
DEFAULT_POOL = PortRange(20000, 20999)
# How long a run waits for an engine or a database that went away before giving up.
ENGINE_PATIENCE_SECONDS = 600
DATABASE_PATIENCE_SECONDS = 600
HEARTBEAT_SECONDS = 5.0
T = TypeVar("T")


@dataclass(frozen=True)
class LaunchSettings:
    output_limit: int = 1024 * 1024
    keep_containers: bool = False
    allow_privileged_jobs: bool = False
    port_pool: PortRange = DEFAULT_POOL
    port_host_ip: str = "0.0.0.0"
    stop_grace_seconds: int = 10
    # How often a pool port the engine calls "already allocated" is swapped for another.
    port_attempts: int = 20
    # Put on every job container besides ours (for log shippers, cost tags, tests).
    extra_labels: tuple[tuple[str, str], ...] = ()
    # How long a run about to start waits for an engine that does not answer (the
    # service: a restart of dockerd delays fires instead of failing them; the CLI: 0).
    engine_patience_seconds: float = 0


def port_variable(key: str) -> str:
    """The variable that tells a job its host port: ORCHESTRATOR_PORT_8080 (_UDP for udp)."""
    number, _, protocol = key.partition("/")
    return f"ORCHESTRATOR_PORT_{number}" + ("_UDP" if protocol == "udp" else "")


class RunLauncher:
    def __init__(
        self,
        database: Database,
        engine: DockerEngine,
        where: SelfContainer,
        settings: LaunchSettings,
        owner: str | None = None,
    ) -> None:
        self.database = database
        self.engine = engine
        self.where = where
        self.settings = settings
        # Runs we record carry this id and a heartbeat while we follow them, so that a
        # scheduler can adopt them if this process dies.
        self.owner = owner or make_owner_id()
        self.leaser = PortLeaser(database, engine, settings.port_pool, settings.port_host_ip)

    # --- recording ----------------------------------------------------------------------

    def queue(
        self,
        spec: JobSpec,
        trigger: RunTrigger,
        scheduled_for: datetime | None = None,
    ) -> RunRecord:
        """Record a pending run (for a manual run: now)."""
        with self.database.session() as session:
            return RunRepository(session).add(
                NewRun(
                    job=spec.name,
                    scheduled_for=scheduled_for or datetime.now(UTC),
                    trigger=trigger,
                    image=spec.image,
                    owner=self.owner,
                )
            )

    def _finish(self, run_id: int, status: RunStatus, **fields: object) -> RunRecord:
        finished_at = datetime.now(UTC)

        def write() -> RunRecord:
            with self.database.session() as session:
                return RunRepository(session).finish(
                    run_id,
                    status=status,
                    finished_at=finished_at,
                    **fields,  # type: ignore[arg-type]
                )

        return self._persist(write)

    def _when_engine_answers(self, action: Callable[[], T]) -> T:
        """An engine call before the container starts, retried while the engine is away
        (for up to engine_patience_seconds): the run starts late instead of failing."""
        return with_backoff(
            action,
            retry_on=EngineUnavailableError,
            patience_seconds=self.settings.engine_patience_seconds,
            what="engine unavailable",
        )

    def _heartbeat(self, run_id: int) -> threading.Event:
        """Beat for the run until the returned event is set."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(HEARTBEAT_SECONDS):
                try:
                    with self.database.session() as session:
                        RunRepository(session).heartbeat(self.owner, [run_id], datetime.now(UTC))
                except OrchestratorError as error:
                    log.warning("heartbeat of run %s failed: %s", run_id, error)

        threading.Thread(target=beat, name=f"beat-{run_id}", daemon=True).start()
        return stop

    def _set_container(self, run_id: int, container_id: str, image_id: str) -> None:
        with self.database.session() as session:
            RunRepository(session).set_container(run_id, container_id, image_id)

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
        container_id: str | None = None
        beat = self._heartbeat(run.id)
        try:
            image_id = self._when_engine_answers(
                lambda: self.engine.ensure_image(spec.image, spec.pull)
            )
            plans = self._mounts(spec)
            if spec.network and not self._when_engine_answers(
                lambda: self.engine.network_exists(spec.network or "")
            ):
                raise NetworkNotFoundError(f"network {spec.network!r} does not exist")
            container_id, ports = self._when_engine_answers(
                lambda: self._create_and_start(run, spec, image_id, plans)
            )
            started_at = datetime.now(UTC)

            def mark() -> bool:
                with self.database.session() as session:
                    return RunRepository(session).mark_running(
                        run.id, started_at=started_at, ports=ports
                    )

            running = self._persist(mark)
            if not running:  # cancelled while we were starting it
                self.engine.kill(container_id)
            elif on_running is not None:
                on_running(run)
            timeout = spec.timeout.total_seconds() if spec.timeout else None
            return self._follow(run, spec, container_id, on_output, timeout)
        except OrchestratorError as error:
            log.info(
                "run %s of %s failed to start: %s",
                run.id,
                spec.name,
                error,
                extra={"run": run.id, "job": spec.name},
            )
            return self._finish(run.id, RunStatus.FAILED, error=str(error))
        except KeyboardInterrupt:
            self._finish(run.id, RunStatus.CANCELLED, error="interrupted")
            raise
        except Exception as error:
            log.exception("run %s of %s: internal error", run.id, spec.name)
            self._finish(run.id, RunStatus.FAILED, error=f"internal error: {error!r}")
            raise
        finally:
            beat.set()
            self.leaser.release(run.id)
            if container_id is not None and not self.settings.keep_containers:
                try:
                    self.engine.remove(container_id)
                except EngineError as error:
                    log.warning("could not remove container %s: %s", container_id[:12], error)

    def _mounts(self, spec: JobSpec) -> list[MountPlan]:
        plans = translate_volumes(spec.volumes, self.where, self.engine.api_version)
        check_safety(spec, plans, self.settings.allow_privileged_jobs)
        if spec.docker_socket:
            plans.append(MountPlan("bind", SOCKET_PATHS[0], SOCKET_PATHS[0]))
        return plans

    def _container_spec(
        self,
        run: RunRecord,
        spec: JobSpec,
        image_id: str,
        plans: list[MountPlan],
        ports: dict[str, int],
    ) -> ContainerSpec:
        environment = dict(spec.environment)
        environment.update({port_variable(key): str(port) for key, port in ports.items()})
        environment.update({"ORCHESTRATOR_JOB": spec.name, "ORCHESTRATOR_RUN_ID": str(run.id)})
        return ContainerSpec(
            # Unique even when several databases share one engine (tests, staging).
            name=f"orchestrator-{spec.name}-{run.id}-{secrets.token_hex(3)}",
            image=image_id,
            labels={
                **dict(self.settings.extra_labels),
                MANAGED_LABEL: "true",
                JOB_LABEL: spec.name,
                RUN_LABEL: str(run.id),
            },
            command=spec.command,
            entrypoint=spec.entrypoint,
            environment=environment,
            mounts=plans,
            ports={key: (self.settings.port_host_ip, port) for key, port in ports.items()},
            working_dir=spec.working_dir,
            user=spec.user,
            memory=spec.resources.memory,
            cpus=spec.resources.cpus,
            network=spec.network,
            privileged=spec.privileged,
            host_network=spec.host_network,
            host_pid=spec.host_pid,
        )

    def _create_and_start(
        self, run: RunRecord, spec: JobSpec, image_id: str, plans: list[MountPlan]
    ) -> tuple[str, dict[str, int]]:
        pinned = {p.host_port for p in spec.ports if p.host_port is not None}
        busy: set[int] = set()
        for _ in range(self.settings.port_attempts):
            ports = self.leaser.lease(run.id, spec.name, spec.ports, spec.timeout, frozenset(busy))
            try:
                container_id = self.engine.create(
                    self._container_spec(run, spec, image_id, plans, ports)
                )
            except EngineUnavailableError:
                self.leaser.release(run.id)
                raise
            self._persist(partial(self._set_container, run.id, container_id, image_id))
            try:
                self.engine.start(container_id)
                return container_id, ports
            except PortAllocatedError as error:
                # The engine has the final word: someone outside our ledger holds it.
                self.engine.remove(container_id)
                self.leaser.release(run.id)
                if error.port in pinned:
                    raise PinnedPortTakenError(
                        f"job {spec.name!r}: pinned host port {error.port}: {error}"
                    ) from None
                log.info("host port %s is taken outside our ledger; trying another", error.port)
                busy.add(error.port)
            except EngineUnavailableError:
                # Start again from scratch once the engine answers (see _when_engine_answers).
                self.leaser.release(run.id)
                with contextlib.suppress(EngineError):
                    self.engine.remove(container_id)
                raise
        raise PortPoolExhaustedError(
            f"job {spec.name!r}: {len(busy)} pool ports in a row were taken outside our "
            f"ledger ({', '.join(map(str, sorted(busy)))})"
        )

    def reattach(self, run: RunRecord, spec: JobSpec, container_id: str) -> RunRecord:
        """Finish the record of a run whose container a dead scheduler left behind:
        follow it if it still runs, else read its exit code and output."""
        beat = self._heartbeat(run.id)
        try:
            state = self.engine.inspect_state(container_id)
            if not state:
                return self._finish(
                    run.id,
                    RunStatus.LOST,
                    error=f"container {container_id[:12]} vanished while no scheduler watched it",
                )
            with self.database.session() as session:
                RunRepository(session).mark_running(
                    run.id, started_at=datetime.now(UTC), ports=run.ports
                )
            timeout = None
            if spec.timeout is not None:
                started = run.started_at or datetime.now(UTC)
                elapsed = (datetime.now(UTC) - started).total_seconds()
                timeout = max(spec.timeout.total_seconds() - elapsed, 0.001)
            return self._follow(run, spec, container_id, None, timeout)
        finally:
            beat.set()
            self.leaser.release(run.id)
            if not self.settings.keep_containers:
                try:
                    self.engine.remove(container_id)
                except EngineError as error:
                    log.warning("could not remove container %s: %s", container_id[:12], error)

    def _wait_through_outages(
        self, container_id: str, timeout: float | None
    ) -> ContainerExit | None:
        """engine.wait, riding out an engine that restarts or does not answer for a while."""
        began = time.monotonic()

        def wait() -> ContainerExit | None:
            elapsed = time.monotonic() - began
            remaining = None if timeout is None else max(timeout - elapsed, 0.001)
            return self.engine.wait(container_id, remaining)

        return with_backoff(
            wait,
            retry_on=EngineUnavailableError,
            patience_seconds=ENGINE_PATIENCE_SECONDS,
            what=f"engine unavailable while waiting for {container_id[:12]}",
        )

    def _follow(
        self,
        run: RunRecord,
        spec: JobSpec,
        container_id: str,
        on_output: OutputSink | None,
        timeout: float | None,
    ) -> RunRecord:
        tail = TailBuffer(self.settings.output_limit)

        def pump() -> None:
            try:
                for chunk in self.engine.follow_output(container_id):
                    tail.write(chunk)
                    if on_output is not None:
                        on_output(chunk)
            except (ContainerGoneError, EngineError) as error:
                log.warning("output of run %s cut short: %s", run.id, error)

        reader = threading.Thread(target=pump, name=f"logs-{run.id}", daemon=True)
        reader.start()
        timed_out = False
        try:
            exit_ = self._wait_through_outages(container_id, timeout)
            if exit_ is None:
                timed_out = True
                self.engine.kill(container_id)
                exit_ = self._wait_through_outages(container_id, 60)
        except ContainerGoneError as gone:
            reader.join(timeout=10)
            return self._finish(run.id, RunStatus.FAILED, error=str(gone), **_captured(tail))
        reader.join(timeout=30)
        exit_code = exit_.exit_code if exit_ is not None else None
        if timed_out:
            status = RunStatus.TIMED_OUT
            allowed = format_duration(spec.timeout) if spec.timeout else "its timeout"
            reason: str | None = f"timed out after {allowed}: killed"
        elif exit_code == 0:
            status, reason = RunStatus.SUCCEEDED, None
        else:
            status, reason = RunStatus.FAILED, f"exit status {exit_code}"
            if exit_ is not None and exit_.oom_killed:
                limit = spec.resources.memory
                reason += " (killed: out of memory" + (
                    f", limit {format_size(limit)})" if limit else ")"
                )
        return self._finish(run.id, status, exit_code=exit_code, error=reason, **_captured(tail))


def _captured(tail: TailBuffer) -> dict[str, object]:
    return {
        "output": tail.text(),
        "output_truncated": tail.truncated,
        "output_limit": tail.limit,
    }

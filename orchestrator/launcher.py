"""One run of one job: a sibling container from pending to its end, all of it recorded.

pending -> running -> succeeded | failed | timed_out | cancelled. Whatever happens, the
run row ends in a final status, its port leases are released and its container removed
(unless kept for debugging).

A run is launched (`launch`: its container created and started) and then followed
(`follow`: its output read to the end, its exit recorded); the service does the two in
different threads, so that launches are bounded by a pool and following a run costs one
thread. At most `max_parallel_launches` create and start calls are in flight at once,
and as many remove calls: a slow remove holds up no launch. A create or start the engine
did not answer is reconciled before it is tried again: the container it may have made is
found by its launch label, followed if it started, removed if not, so a run never has two
containers and none is left `Created`.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar

from orchestrator import chains, events
from orchestrator.backoff import with_backoff
from orchestrator.deadlines import Deadlines
from orchestrator.engine import (
    JOB_LABEL,
    LAUNCH_LABEL,
    MANAGED_LABEL,
    RUN_LABEL,
    ContainerExit,
    ContainerSpec,
    Engine,
)
from orchestrator.engine.errors import (
    ContainerGoneError,
    EngineError,
    EngineUnavailableError,
    NetworkNotFoundError,
    PortAllocatedError,
)
from orchestrator.errors import DatabaseUnavailableError, OrchestratorError, TakenOverError
from orchestrator.hostpaths import (
    HostPathError,
    MountPlan,
    SelfContainer,
    translate_volume,
)
from orchestrator.masking import OutputMasker
from orchestrator.outcomes import classify_exit
from orchestrator.ownership import make_owner_id
from orchestrator.portleasing import PortLeaser
from orchestrator.ports import (
    PinnedPortTakenError,
    PortPoolExhaustedError,
    PortRange,
    parse_port_range,
)
from orchestrator.records import NewRun, RunRecord, RunStatus, RunTrigger
from orchestrator.safety import HostPolicy, UnsafeJobError, check_launch, resolve_requested_path
from orchestrator.secretfiles import (
    LaunchSecrets,
    SecretUnavailableError,
    load_launch_secrets,
    read_secret,
    registry_login,
)
from orchestrator.settings import (
    DEFAULT_DOCKER_SOCKET,
    DEFAULT_MAX_PARALLEL_LAUNCHES,
    DEFAULT_OUTPUT_LIMIT,
    DEFAULT_PORT_HOST_IP,
    DEFAULT_PORT_RANGE,
    DEFAULT_SECRETS_DIR,
)
from orchestrator.spec import JobSpec, NotifySpec, VolumeSpec
from orchestrator.store.database import Database
from orchestrator.store.facade import Store
from orchestrator.tailbuffer import TailBuffer
from orchestrator.units import format_duration, parse_size

log = logging.getLogger(__name__)
OutputSink = Callable[[bytes], None]
# How long a run waits for an engine or a database that went away before giving up.
ENGINE_PATIENCE_SECONDS = 600
DATABASE_PATIENCE_SECONDS = 600
HEARTBEAT_SECONDS = 5.0
DEFAULT_PORT_POOL = parse_port_range(DEFAULT_PORT_RANGE)
# Where a job that holds the docker_socket grant finds the engine.
JOB_SOCKET_PATH = "/var/run/docker.sock"
# States of a container that has started (it may have ended since).
STARTED_STATES = frozenset({"running", "exited", "paused", "restarting"})
T = TypeVar("T")


@dataclass(frozen=True)
class LaunchSettings:
    output_limit: int = parse_size(DEFAULT_OUTPUT_LIMIT)
    keep_containers: bool = False
    allow_privileged_jobs: bool = False
    # Host directories that bind sources must lie in (empty: anywhere but /).
    allowed_host_paths: tuple[str, ...] = ()
    # The engine's unix socket as this process sees it; None when reached over TCP.
    engine_socket: str | None = DEFAULT_DOCKER_SOCKET
    engine_address: str = f"unix://{DEFAULT_DOCKER_SOCKET}"
    secrets_dir: str = DEFAULT_SECRETS_DIR
    # A Docker config.json in the secrets directory, by name: logins for pulls.
    registry_auth: str | None = None
    port_pool: PortRange = DEFAULT_PORT_POOL
    port_host_ip: str = DEFAULT_PORT_HOST_IP
    stop_grace_seconds: int = 10
    # A run past its timeout whose container the engine has not stopped this much later
    # (a kill that does not return, a wedged engine) is recorded timed_out all the same.
    kill_grace_seconds: float = 30.0
    # How often a pool port the engine calls "already allocated" is swapped for another.
    port_attempts: int = 20
    # Put on every job container besides ours (for log shippers, cost tags, tests).
    extra_labels: tuple[tuple[str, str], ...] = ()
    # How long a run about to start waits for an engine that does not answer (the
    # service: a restart of dockerd delays fires instead of failing them; the CLI: 0).
    engine_patience_seconds: float = 0
    # Told of the runs of jobs that name no `notify:` of their own (ORCHESTRATOR_NOTIFY).
    default_notify: tuple[NotifySpec, ...] = ()
    max_parallel_launches: int = DEFAULT_MAX_PARALLEL_LAUNCHES
    # How often the runs this process holds are beaten for (the service: at most a third
    # of --adopt-after).
    heartbeat_seconds: float = HEARTBEAT_SECONDS


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


class Heartbeats:
    """One thread beats for every run this process holds (queued, starting or followed),
    so that no other scheduler adopts them; a run that is dropped is no longer beaten."""

    def __init__(self, store: Store, owner: str, interval: float = HEARTBEAT_SECONDS) -> None:
        self._store = store
        self._owner = owner
        self._interval = interval
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
                self._store.heartbeat(self._owner, held, datetime.now(UTC))
            except OrchestratorError as error:
                log.warning("heartbeat of %d run(s) failed: %s", len(held), error)


def port_variable(key: str) -> str:
    """The variable that tells a job its host port: ORCHESTRATOR_PORT_8080 (_UDP for udp)."""
    number, _, protocol = key.partition("/")
    return f"ORCHESTRATOR_PORT_{number}" + ("_UDP" if protocol == "udp" else "")


class RunLauncher:
    def __init__(
        self,
        database: Database,
        engine: Engine,
        where: SelfContainer,
        settings: LaunchSettings,
        owner: str | None = None,
    ) -> None:
        self.database = database
        self.store = Store(database)
        self.engine = engine
        self.where = where
        self.settings = settings
        # Runs we record carry this id and a heartbeat while we follow them, so that a
        # scheduler can adopt them if this process dies.
        self.owner = owner or make_owner_id()
        self.heartbeats = Heartbeats(self.store, self.owner, settings.heartbeat_seconds)
        self.deadlines = Deadlines("run-timeouts")
        # Bound the create and start calls in flight, and apart the removes (they shared
        # one bound, and launches waited behind the removes of runs that had ended).
        self.engine_calls = threading.BoundedSemaphore(settings.max_parallel_launches)
        self.removals = threading.BoundedSemaphore(settings.max_parallel_launches)
        self.leaser = PortLeaser(database, engine, settings.port_pool, settings.port_host_ip)
        self.policy = HostPolicy(
            allow_privileged_jobs=settings.allow_privileged_jobs,
            allowed_host_paths=settings.allowed_host_paths,
            engine_sockets=self._engine_socket_on_host(),
        )

    def _engine_socket_on_host(self) -> tuple[str, ...]:
        """The engine's socket as the host names it (for the policy), where we can tell."""
        path = self.settings.engine_socket
        if path is None:
            return ()
        if not self.where.in_container:
            return tuple(dict.fromkeys((path, os.path.realpath(path))))
        try:
            plans = translate_volume(VolumeSpec(path, JOB_SOCKET_PATH), self.where)
        except HostPathError:
            return ()
        return tuple(plan.source for plan in plans if plan.type == "bind")

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
                scheduled_for=scheduled_for or datetime.now(UTC),
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
        """Record the run's end, and (in the same transaction) the notifications of it
        and the runs its chains start."""
        finished_at = datetime.now(UTC)
        notify = events.on_end(self.with_defaults(spec)) if spec is not None else None
        chain = chains.on_end(spec) if spec is not None else None

        def write() -> RunRecord:
            return self.store.finish_run(
                run_id,
                status=status,
                finished_at=finished_at,
                notify=notify,
                chain=chain,
                owner=self.owner,
                **fields,
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

    def _set_container(self, run_id: int, container_id: str, image_id: str) -> bool:
        return self.store.set_container(run_id, container_id, image_id, self.owner)

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
        launched = self.launch(run, spec)
        if launched is None:  # adopted by a scheduler: as it stands now
            return self.store.run(run.id)
        if isinstance(launched, RunRecord):
            return launched
        return self.follow(launched, on_output, on_running)

    def launch(self, run: RunRecord, spec: JobSpec) -> Launched | RunRecord | None:
        """Create and start the run's container: what following it needs (its start is
        recorded by `follow`), the run's record when it ended before (it could not
        start: failed, with the reason), or None when another scheduler adopted it
        meanwhile (nothing is recorded here)."""
        # Every container made for this run, the moment the engine made it: whatever
        # interrupts the start (Ctrl-C, SIGTERM, an error), they are removed.
        created: list[str] = []
        self.heartbeats.hold(run.id)
        launched: Launched | RunRecord | None = None
        taken_over = False
        try:
            launched = self._guarded(run, spec, lambda: self._launch(run, spec, created))
            return launched
        except TakenOverError as error:
            log.warning("%s; not started here", error, extra={"run": run.id, "job": spec.name})
            taken_over = True
            return None
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
            return self._follow(
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

    def _launch(
        self,
        run: RunRecord,
        spec: JobSpec,
        created: list[str],
    ) -> Launched:
        given = load_launch_secrets(spec, self.settings.secrets_dir)
        auth = self._registry_login(spec.image)
        image_id = self._when_engine_answers(
            lambda: self.engine.ensure_image(spec.image, spec.pull, auth)
        )
        plans = self._mounts(spec, given)
        if spec.network and not self._when_engine_answers(
            lambda: self.engine.network_exists(spec.network or "")
        ):
            raise NetworkNotFoundError(f"network {spec.network!r} does not exist")
        container_id, ports = self._start_container(run, spec, image_id, plans, given, created)
        started_at = datetime.now(UTC)
        masker = OutputMasker(given.masked)
        return Launched(run, spec, container_id, masker, started_at, ports, created)

    def _mark_running(self, launched: Launched) -> bool:
        """Record the run's start (in its follower: a launch slot spent a fifth of its
        time on this write); False, and its container killed, if it was cancelled
        meanwhile."""

        def mark() -> bool:
            return self.store.mark_running(
                launched.run.id,
                started_at=launched.started_at,
                ports=launched.ports,
                notify=events.on_start(self.with_defaults(launched.spec)),
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

    def _registry_login(self, image: str) -> dict[str, str] | None:
        name = self.settings.registry_auth
        if name is None:
            return None
        raw = read_secret(self.settings.secrets_dir, name)
        return registry_login(raw.decode("utf-8", "replace"), image, f"secret {name!r}")

    def _mounts(self, spec: JobSpec, given: LaunchSecrets) -> list[MountPlan]:
        """The job's volumes as the engine will get them, checked by the policy, plus
        what its grant and its secrets add."""
        api = self.engine.api_version
        plans: list[MountPlan] = []
        for volume in spec.volumes:
            if volume.is_bind:
                real = resolve_requested_path(volume.source, self.where, os.path.realpath)
                volume = replace(volume, source=real)
            plans.extend(translate_volume(volume, self.where, api))
        check_launch(spec, plans, self.policy)
        if spec.docker_socket:
            socket = self.settings.engine_socket
            if socket is None:
                raise UnsafeJobError(
                    f"job {spec.name!r} asks for docker_socket, but this service reaches the "
                    f"engine at {self.settings.engine_address}, not through a socket it "
                    "could hand over"
                )
            plans.extend(translate_volume(VolumeSpec(socket, JOB_SOCKET_PATH), self.where, api))
        for target, path in sorted(given.files.items()):
            secret = VolumeSpec(str(path), target, read_only=True)
            plans.extend(translate_volume(secret, self.where, api))
        return plans

    def _container_spec(
        self,
        run: RunRecord,
        spec: JobSpec,
        image_id: str,
        plans: list[MountPlan],
        ports: dict[str, int],
        given: LaunchSecrets,
        launch: str,
    ) -> ContainerSpec:
        # As docker run: --env-file first, -e over it; our own variables last.
        environment = {**given.environment, **dict(spec.environment)}
        environment.update(
            {secret.env: given.environment[secret.env] for secret in spec.secrets if secret.env}
        )
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
                LAUNCH_LABEL: launch,
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
            merge_output=True,
        )

    def _start_container(
        self,
        run: RunRecord,
        spec: JobSpec,
        image_id: str,
        plans: list[MountPlan],
        given: LaunchSecrets,
        created: list[str],
    ) -> tuple[str, dict[str, int]]:
        """Create and start the container, retried (with backoff, for up to the engine
        patience) while the engine does not answer; before each retry, what the call
        that got no answer did is reconciled (see the module doc)."""
        launch = secrets.token_hex(8)
        leased: dict[str, int] = {}
        tries = 0

        def attempt() -> tuple[str, dict[str, int]]:
            nonlocal tries
            tries += 1
            if tries > 1:
                started = self._reconcile(run, launch, created)
                if started is not None:
                    log.info(
                        "run %s: the container started though the engine did not say so", run.id
                    )
                    return started, dict(leased)
                self.leaser.release(run.id)
                leased.clear()
            return self._create_and_start(
                run, spec, image_id, plans, given, launch, created, leased
            )

        return self._when_engine_answers(attempt)

    def _reconcile(self, run: RunRecord, launch: str, created: list[str]) -> str | None:
        """After a create or start the engine did not answer: the container of this
        launch that started (to follow), or None, every other one of it removed."""
        found = [w for w in self.engine.managed(run_id=run.id) if w.launch == launch]
        started = next((w.handle for w in found if w.status in STARTED_STATES), None)
        for workload in found:
            if workload.handle not in created:
                created.append(workload.handle)
        for handle in list(created):
            if handle != started:
                with self.engine_calls:
                    self.engine.remove(handle)
                created.remove(handle)
        return started

    def _create_and_start(
        self,
        run: RunRecord,
        spec: JobSpec,
        image_id: str,
        plans: list[MountPlan],
        given: LaunchSecrets,
        launch: str,
        created: list[str],
        leased: dict[str, int],
    ) -> tuple[str, dict[str, int]]:
        pinned = {p.host_port for p in spec.ports if p.host_port is not None}
        busy: set[int] = set()
        for _ in range(self.settings.port_attempts):
            ports = self.leaser.lease(run.id, spec.name, spec.ports, spec.timeout, frozenset(busy))
            leased.clear()
            leased.update(ports)
            container = self._container_spec(run, spec, image_id, plans, ports, given, launch)
            with self.engine_calls:
                container_id = self.engine.create(container)
            created.append(container_id)
            if not self._persist(partial(self._set_container, run.id, container_id, image_id)):
                # Adopted meanwhile (we looked dead): the adopter starts it, not us.
                for port in ports.values():
                    self.leaser.release(run.id, port)
                leased.clear()
                raise TakenOverError(f"run {run.id} was adopted by another scheduler")
            try:
                with self.engine_calls:
                    self.engine.start(container_id)
                return container_id, ports
            except PortAllocatedError as error:
                # The engine has the final word: someone outside our ledger holds it.
                self._remove(container_id)
                created.remove(container_id)
                self.leaser.release(run.id)
                if error.port in pinned:
                    raise PinnedPortTakenError(
                        f"job {spec.name!r}: pinned host port {error.port}: {error}"
                    ) from None
                log.info("host port %s is taken outside our ledger; trying another", error.port)
                busy.add(error.port)
            except EngineUnavailableError:
                raise  # reconciled before the next try (see _start_container)
            except EngineError:
                # The engine refused the start (a command not in the image, say): the run
                # fails, and its container, which never ran, goes (at the run's end).
                if ports:
                    self.leaser.release(run.id)
                raise
        raise PortPoolExhaustedError(
            f"job {spec.name!r}: {len(busy)} pool ports in a row were taken outside our "
            f"ledger ({', '.join(map(str, sorted(busy)))})"
        )

    def reattach(self, run: RunRecord, spec: JobSpec, container_id: str) -> RunRecord:
        """Finish the record of a run whose container a dead scheduler left behind:
        follow it if it still runs, else read its exit code and output."""
        self.heartbeats.hold(run.id)
        try:
            state = self.engine.state(container_id)
            if state is None:
                return self._finish(
                    run.id,
                    RunStatus.LOST,
                    spec,
                    error=f"container {container_id[:12]} vanished while no scheduler watched it",
                )
            self.store.mark_running(run.id, started_at=datetime.now(UTC), ports=run.ports)
            timeout = None
            if spec.timeout is not None:
                started = run.started_at or datetime.now(UTC)
                elapsed = (datetime.now(UTC) - started).total_seconds()
                timeout = max(spec.timeout.total_seconds() - elapsed, 0.001)
            return self._follow(run, spec, container_id, None, timeout, self._masker_for(spec))
        finally:
            self._clean_up(run.id, [container_id])

    def _masker_for(self, spec: JobSpec) -> OutputMasker | None:
        """The masker of a run we did not start; None when its secrets cannot be read
        again here, so its output cannot be masked and is not kept."""
        try:
            return OutputMasker(load_launch_secrets(spec, self.settings.secrets_dir).masked)
        except SecretUnavailableError as error:
            log.warning("output of a run of %s withheld: %s", spec.name, error)
            return None

    def _wait_through_outages(self, container_id: str) -> ContainerExit | None:
        """engine.wait, riding out an engine that restarts or does not answer for a while."""
        return with_backoff(
            lambda: self.engine.wait(container_id, None),
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
        masker: OutputMasker | None,
    ) -> RunRecord:
        """The output and the exit, in this thread. A timeout is kept by the shared
        deadline thread, which kills the container when it is due.

        Followed live only when someone takes it live (`on_output`: a foreground `jobs
        run`). Otherwise the exit is waited for and the output read once after it: the
        same engine calls as a bare create, start, wait, logs, remove, where a live
        stream costs the engine a follower per run and the stream, which can end early
        (moby#43860), must be read again after the exit. Live viewers read the
        container's own stream (`runs logs --follow`, the API's SSE), not this one; the
        engine keeps a stopped container's output until we remove it."""
        tail = TailBuffer(self.settings.output_limit)

        def deliver(chunk: bytes) -> None:
            if chunk:
                tail.write(chunk)
                if on_output is not None:
                    on_output(chunk)

        def kill_if_running() -> bool:
            if not self.engine.is_running(container_id):
                return False
            self.engine.kill(container_id)
            return True

        def end_wedged() -> bool:
            grace = self.settings.kill_grace_seconds
            log.warning(
                "run %s of %s: container %s still not stopped %.0fs after its timeout",
                run.id,
                spec.name,
                container_id[:12],
                grace,
                extra={"run": run.id, "job": spec.name},
            )
            self._finish(
                run.id,
                RunStatus.TIMED_OUT,
                spec,
                error=f"timed out after {format_duration(spec.timeout or timedelta())}; the "
                f"engine had not stopped container {container_id[:12]} {grace:.0f}s later "
                "(it may still run)",
            )  # its exit code and output are filled in when the engine tells them
            return True

        deadline = wedged = None
        if timeout is not None:
            deadline = self.deadlines.after(
                timeout, kill_if_running, f"the timeout of run {run.id}"
            )
            wedged = self.deadlines.after(
                timeout + self.settings.kill_grace_seconds,
                end_wedged,
                f"the end of run {run.id} after its timeout",
            )
        try:
            live = on_output is not None
            if not live:
                exit_ = self._wait_through_outages(container_id)
            if masker is None:
                deliver(b"(output withheld: the job's secrets cannot be read to mask it)\n")
            else:
                try:
                    read = self.engine.follow_output if live else self.engine.output
                    for chunk in read(container_id):
                        deliver(masker.feed(chunk))
                except (ContainerGoneError, EngineError) as error:
                    log.warning("output of run %s cut short: %s", run.id, error)
                finally:
                    deliver(masker.flush())
            if live:
                exit_ = self._wait_through_outages(container_id)
        except ContainerGoneError as gone:
            return self._finish(run.id, RunStatus.FAILED, spec, error=str(gone), **_captured(tail))
        finally:
            for due in (deadline, wedged):
                if due is not None:
                    due.cancel()
        status, reason = classify_exit(
            exit_.exit_code if exit_ is not None else None,
            timed_out=deadline is not None and deadline.fired,
            oom_killed=exit_ is not None and exit_.oom_killed,
            timeout=spec.timeout,
            memory_limit=spec.resources.memory,
        )
        return self._finish(
            run.id,
            status,
            spec,
            exit_code=exit_.exit_code if exit_ is not None else None,
            error=reason,
            **_captured(tail),
        )


def _captured(tail: TailBuffer) -> dict[str, object]:
    return {
        "output": tail.text(),
        "output_truncated": tail.truncated,
        "output_limit": tail.limit,
    }

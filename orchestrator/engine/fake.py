"""An engine in memory that keeps the engine contract, for fast tests of the policies
(and for anyone who wants to try a job file without Docker).

Workloads are scripted by job (the `orchestrator.job` label), else by image: an exit
code, an output, how long they run, or a start the engine refuses. The engine can be
told that a host port is taken outside our ledger, that an image is missing, that it
goes away and comes back, that its create, start and remove calls are slow, and that
some of them time out (having done their work or not) or fail. Time is real (scripted
durations are meant to be short); every method is thread-safe. The contract tests in
tests/integration/engine run the same checks against this and against Docker.
"""

from __future__ import annotations

import hashlib
import itertools
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from orchestrator.engine.contract import (
    ContainerEvent,
    ContainerExit,
    ContainerSpec,
    Engine,
    EngineFacts,
    ExecSpec,
    ExecTarget,
    Handle,
    LabelledContainer,
    ManagedWorkload,
    WorkloadState,
)
from orchestrator.engine.errors import (
    ContainerGoneError,
    EngineError,
    EngineUnavailableError,
    ImageUnavailableError,
    NetworkNotFoundError,
    PortAllocatedError,
)
from orchestrator.hostpaths import NetworkRef, SelfContainer, VolumeFacts
from orchestrator.labels import JOB_LABEL, LAUNCH_LABEL, MANAGED_LABEL, RUN_LABEL
from orchestrator.spec import PullPolicy

EXIT_KILLED = 137  # 128 + SIGKILL, as Docker reports it
EXIT_TERMINATED = 143  # 128 + SIGTERM


@dataclass(frozen=True)
class Script:
    """What a workload does once started."""

    exit_code: int = 0
    output: bytes = b""
    seconds: float = 0.0
    # The engine refuses the start with this reason (a command not in the image, say).
    start_error: str | None = None
    oom_killed: bool = False


@dataclass
class _Fault:
    error: EngineError
    # The engine did the work before the caller heard the error (a timed-out answer).
    done: bool


@dataclass
class _Workload:
    handle: str
    spec: ContainerSpec
    script: Script
    status: str = "created"
    started: float | None = None
    exit_code: int | None = None


def fake_network_id(name: str) -> str:
    """The fake's id of a network: 64 hex digits, fixed by its name."""
    return hashlib.sha256(name.encode()).hexdigest()


@dataclass
class FakeEngine:
    """The engine contract in memory. See the module doc."""

    version: str = "fake"
    api: tuple[int, int] = (1, 41)
    host_name: str = "fake-engine"
    images: dict[str, str] = field(default_factory=dict)  # reference -> id
    pullable: set[str] = field(default_factory=set)
    networks: set[str] = field(default_factory=lambda: {"bridge", "host", "none"})
    volumes: dict[str, VolumeFacts] = field(default_factory=dict)
    # Ports published by containers that are not ours: (host_ip, port, protocol).
    foreign_ports: set[tuple[str, int, str]] = field(default_factory=set)
    default_script: Script = field(default_factory=Script)
    # Every call, by name, for tests that count them.
    calls: list[str] = field(default_factory=list)
    # Seconds that each create, start, remove, stop or kill call takes (a busy engine).
    delays: dict[str, float] = field(default_factory=dict)
    # The most create and start calls (together) that were ever in flight at once, and
    # the most remove calls (bounded apart: a slow remove holds up no launch).
    peak_in_flight: int = 0
    peak_removing: int = 0

    def __post_init__(self) -> None:
        self._scripts: dict[str, Script] = {}
        self._workloads: dict[str, _Workload] = {}
        self._ids = itertools.count(1)
        self._changed = threading.Condition()
        self._available = True
        self._faults: dict[str, list[_Fault]] = {}
        self._in_flight = 0
        self._removing = 0
        # Containers that are not ours (label discovery sees them), and who listens.
        self._others: dict[str, LabelledContainer] = {}
        self._listeners: list[_FakeEvents] = []
        # What makes an exec into one of them a grant: (privileged, holds the socket).
        self._grants: dict[str, tuple[bool, bool]] = {}

    # --- scripting ----------------------------------------------------------------------

    def add_image(self, reference: str) -> str:
        image_id = f"sha256:{abs(hash(reference)):064x}"[:71]
        self.images[reference] = image_id
        return image_id

    def add_container(
        self, name: str, labels: Mapping[str, str] | None = None, **facts: bool
    ) -> ExecTarget:
        """A container not ours, for exec jobs; execs into it run its name's script."""
        ident = hashlib.sha256(name.encode()).hexdigest()
        with self._changed:
            self._others[ident] = LabelledContainer(
                ident, name, dict(labels or {}), facts.get("running", True), time.time()
            )
            self._grants[ident] = (facts.get("privileged", False), facts.get("holds_socket", False))
        return self._target(self._others[ident])

    def _target(self, container: LabelledContainer) -> ExecTarget:
        privileged, holds_socket = self._grants.get(container.id, (False, False))
        return ExecTarget(container.id, container.name, container.running, privileged, holds_socket)

    def script(self, job_or_image: str, script: Script | None = None, **fields: object) -> None:
        """How workloads of this job (or image) behave: `script(job, exit_code=3)`."""
        self._scripts[job_or_image] = script or Script(**fields)  # type: ignore[arg-type]

    def go_away(self) -> None:
        """Every call fails as if the engine were restarting, until `come_back`."""
        with self._changed:
            self._available = False

    def come_back(self) -> None:
        with self._changed:
            self._available = True
            self._changed.notify_all()

    def time_out(self, call: str, times: int = 1, *, done: bool) -> None:
        """The next `times` calls of `call` (create, start, remove) time out: the caller
        hears no answer, though the engine did the work (`done`) or did not."""
        error = EngineUnavailableError(f"{call}: the engine did not answer: Read timed out")
        with self._changed:
            self._faults.setdefault(call, []).extend(_Fault(error, done) for _ in range(times))

    def fail(self, call: str, times: int = 1, reason: str = "the engine refused") -> None:
        """The next `times` calls of `call` fail with an answer (an EngineError)."""
        error = EngineError(f"{call}: {reason}")
        with self._changed:
            self._faults.setdefault(call, []).extend(_Fault(error, False) for _ in range(times))

    def run_container(
        self,
        name: str,
        labels: Mapping[str, str],
        networks: tuple[str, ...] = ("bridge",),
        volumes: tuple[str, ...] = (),
    ) -> str:
        """A container not ours, started (as `docker run` would): its id."""
        with self._changed:
            ident = f"{next(self._ids):064x}"
            self._others[ident] = LabelledContainer(
                ident, name, dict(labels), True, time.time(), networks, volumes
            )
        self._tell("start", ident)
        return ident

    def _other(self, name: str) -> LabelledContainer:
        with self._changed:
            return next(c for c in self._others.values() if name in (c.id, c.name))

    def set_running(self, name: str, running: bool) -> None:
        """Stop (a die event) or start a container not ours."""
        found = self._other(name)
        with self._changed:
            self._others[found.id] = replace(found, running=running)
        self._tell("start" if running else "die", found.id)

    def rename_container(self, name: str, new_name: str) -> None:
        found = self._other(name)
        with self._changed:
            self._others[found.id] = replace(found, name=new_name)
        self._tell("rename", found.id)

    def remove_container(self, name: str) -> None:
        found = self._other(name)
        with self._changed:
            self._others.pop(found.id)
            self._grants.pop(found.id, None)
            for handle in [h for h, w in self._workloads.items() if w.spec.name == found.id]:
                self._workloads.pop(handle)
            self._changed.notify_all()
        if found.running:
            self._tell("die", found.id)
        self._tell("destroy", found.id)

    def _tell(self, action: str, ident: str) -> None:
        with self._changed:
            listeners = list(self._listeners)
            container = self._others.get(ident)
        for listener in listeners:
            if container is None or all(
                container.labels.get(k) == v for k, v in listener.labels.items()
            ):
                labels = dict(container.labels) if container is not None else None
                listener.put(ContainerEvent(action, ident, labels))

    # --- the contract -------------------------------------------------------------------

    @property
    def api_version(self) -> tuple[int, int]:
        return self.api

    def facts(self) -> EngineFacts:
        self._call("facts")
        return EngineFacts(self.version, f"{self.api[0]}.{self.api[1]}", self.host_name)

    def inspect_self(self, container_id: str, how: str) -> SelfContainer:
        self._call("inspect_self")
        raise EngineError(f"container {container_id[:12]} ({how}) is not on this engine")

    def published_ports(self) -> set[tuple[str, int, str]]:
        self._call("published_ports")
        with self._changed:
            ours = {
                (ip, port, key.partition("/")[2] or "tcp")
                for workload in self._workloads.values()
                if self._status(workload) == "running"
                for key, (ip, port) in workload.spec.ports.items()
            }
        return ours | self.foreign_ports

    def network_exists(self, name: str) -> bool:
        self._call("network_exists")
        return name in self.networks

    def find_network(self, reference: str) -> NetworkRef | None:
        """As the engine resolves it: a full id, a name, then a unique prefix of an id."""
        self._call("find_network")
        known = [NetworkRef(fake_network_id(name), name) for name in sorted(self.networks)]
        for found in (
            [n for n in known if n.id == reference],
            [n for n in known if n.name == reference],
            [n for n in known if reference and n.id.startswith(reference)],
        ):
            if found:
                return found[0] if len(found) == 1 else None
        return None

    def volume(self, name: str) -> VolumeFacts | None:
        self._call("volume")
        return self.volumes.get(name)

    def ensure_image(
        self, reference: str, policy: PullPolicy, auth: Mapping[str, str] | None = None
    ) -> str:
        self._call("ensure_image")
        if reference in self.images and policy is not PullPolicy.ALWAYS:
            return self.images[reference]
        if policy is PullPolicy.NEVER:
            raise ImageUnavailableError(
                f"image {reference!r} is not on the engine and the pull policy is never"
            )
        if reference not in self.pullable:
            raise ImageUnavailableError(f"image {reference!r} cannot be pulled: not found")
        return self.add_image(reference)

    def create(self, spec: ContainerSpec) -> Handle:
        with self._calling("create"):
            if spec.network and not spec.host_network and spec.network not in self.networks:
                raise NetworkNotFoundError(f"network {spec.network!r} does not exist")
            job = spec.labels.get(JOB_LABEL, "")
            script = self._scripts.get(job) or self._scripts.get(spec.image) or self.default_script
            with self._changed:
                handle = f"{next(self._ids):064x}"
                self._workloads[handle] = _Workload(handle, spec, script)
            return handle
        raise AssertionError("unreachable")  # pragma: no cover - _calling returns or raises

    def exec_target(self, reference: str) -> ExecTarget | None:
        self._call("exec_target")
        with self._changed:
            for container in self._others.values():
                if reference in (container.name, container.id) or (
                    len(reference) >= 12 and container.id.startswith(reference)
                ):
                    return self._target(container)
        return None

    def exec_targets(self, selector: Mapping[str, str]) -> list[ExecTarget]:
        self._call("exec_targets")
        with self._changed:
            return sorted(
                (
                    self._target(c)
                    for c in self._others.values()
                    if c.running and all(c.labels.get(k) == v for k, v in selector.items())
                ),
                key=lambda target: target.name,
            )

    def create_exec(self, spec: ExecSpec) -> Handle:
        with self._calling("create"):
            with self._changed:
                found = [c for c in self._others.values() if c.id == spec.container_id]
                if not found:
                    raise ContainerGoneError(f"container {spec.container_id[:12]} is gone")
                if not found[0].running:
                    raise EngineError(f"container {found[0].name} is not running")
                script = self._scripts.get(found[0].name) or self.default_script
                handle = f"exec:{next(self._ids):060x}"
                # The exec's spec, in the workload's record: its name holds the target.
                workload_spec = ContainerSpec(name=spec.container_id, image="", labels={})
                self._workloads[handle] = _Workload(handle, workload_spec, script)
            return handle
        raise AssertionError("unreachable")  # pragma: no cover - _calling returns or raises

    def start(self, handle: Handle) -> None:
        with self._calling("start"):
            self._start(handle)

    def _start(self, handle: Handle) -> None:
        with self._changed:
            workload = self._get(handle)
            if workload.script.start_error:
                raise EngineError(f"cannot start the container: {workload.script.start_error}")
            taken = {port for _, port, _ in self.foreign_ports} | {
                port
                for other in self._workloads.values()
                if other is not workload and self._status(other) == "running"
                for _, port in other.spec.ports.values()
            }
            for ip, port in workload.spec.ports.values():
                if port in taken:
                    raise PortAllocatedError(
                        port, f"Bind for {ip}:{port} failed: port is already allocated"
                    )
            workload.status, workload.started = "running", time.monotonic()
            self._changed.notify_all()

    def wait(self, handle: Handle, timeout: float | None) -> ContainerExit | None:
        self._call("wait")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                workload = self._get(handle)
                if self._status(workload) == "exited":
                    assert workload.exit_code is not None
                    return ContainerExit(workload.exit_code, workload.script.oom_killed)
                left = self._left(workload)
                if deadline is not None:
                    left = min(left, deadline - time.monotonic())
                    if left <= 0:
                        return None
                self._changed.wait(min(left, 0.05))
                if not self._available:
                    raise EngineUnavailableError("waiting for the container: the engine went away")

    def state(self, handle: Handle) -> WorkloadState | None:
        self._call("state")
        with self._changed:
            workload = self._workloads.get(handle)
            if workload is None:
                return None
            status = self._status(workload)
            return WorkloadState(
                status=status,
                running=status == "running",
                exit_code=workload.exit_code,
                oom_killed=workload.script.oom_killed and status == "exited",
            )

    def is_running(self, handle: Handle) -> bool:
        state = self.state(handle)
        return state is not None and state.running

    def follow_output(self, handle: Handle) -> Iterator[bytes]:
        self._call("follow_output")
        with self._changed:
            workload = self._get(handle)
        if workload.script.output:
            yield workload.script.output
        self.wait(handle, None)

    def output(self, handle: Handle) -> Iterator[bytes]:
        self._call("output")
        with self._changed:
            workload = self._get(handle)
            started = workload.status != "created"
        if started and workload.script.output:
            yield workload.script.output

    def stop(self, handle: Handle, grace_seconds: int = 10) -> None:
        self._end(handle, EXIT_TERMINATED, "stop")

    def kill(self, handle: Handle) -> None:
        self._end(handle, EXIT_KILLED, "kill")

    def remove(self, handle: Handle) -> None:
        with self._calling("remove"), self._changed:
            self._workloads.pop(handle, None)
            self._changed.notify_all()

    def discard_unstarted(self, handle: Handle) -> bool:
        with self._calling("remove"), self._changed:
            workload = self._workloads.get(handle)
            if workload is not None and self._status(workload) == "running":
                return False
            self._workloads.pop(handle, None)
            self._changed.notify_all()
            return True
        raise AssertionError("unreachable")  # pragma: no cover - _calling returns or raises

    def managed(self, *, run_id: int | None = None) -> list[ManagedWorkload]:
        self._call("managed")
        with self._changed:
            found = []
            for workload in self._workloads.values():
                labels = workload.spec.labels
                run = labels.get(RUN_LABEL, "")
                if labels.get(MANAGED_LABEL) != "true":
                    continue
                if run_id is not None and run != str(run_id):
                    continue
                found.append(
                    ManagedWorkload(
                        handle=workload.handle,
                        job=labels.get(JOB_LABEL),
                        run_id=int(run) if run.isdigit() else None,
                        status=self._status(workload),
                        launch=labels.get(LAUNCH_LABEL),
                    )
                )
            return found

    def containers(self, labels: Mapping[str, str]) -> list[LabelledContainer]:
        self._call("containers")
        with self._changed:
            return [
                c
                for c in self._others.values()
                if all(c.labels.get(k) == v for k, v in labels.items())
            ]

    def container_events(self, labels: Mapping[str, str]) -> _FakeEvents:
        self._call("container_events")
        events = _FakeEvents(dict(labels), self)
        with self._changed:
            self._listeners.append(events)
        return events

    def _unlisten(self, events: _FakeEvents) -> None:
        with self._changed:
            if events in self._listeners:
                self._listeners.remove(events)

    def close(self) -> None:
        pass

    # --- inside -------------------------------------------------------------------------

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if not self._available:
            raise EngineUnavailableError(f"{name}: the engine did not answer (it went away)")

    @contextmanager
    def _calling(self, name: str) -> Iterator[None]:
        """A create, start or remove call: counted in flight, slowed, or failed as told."""
        self._call(name)
        with self._changed:
            faults = self._faults.get(name)
            fault = faults.pop(0) if faults else None
            if name == "remove":
                self._removing += 1
                self.peak_removing = max(self.peak_removing, self._removing)
            else:
                self._in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            time.sleep(self.delays.get(name, 0.0))
            if fault is not None and not fault.done:
                raise fault.error
            yield
            if fault is not None:
                raise fault.error
        finally:
            with self._changed:
                if name == "remove":
                    self._removing -= 1
                else:
                    self._in_flight -= 1

    def _get(self, handle: Handle) -> _Workload:
        workload = self._workloads.get(handle)
        if workload is None:
            raise ContainerGoneError(f"container {handle[:12]} is gone")
        return workload

    def _left(self, workload: _Workload) -> float:
        if workload.started is None:
            return 0.05
        return max(workload.started + workload.script.seconds - time.monotonic(), 0.0)

    def _status(self, workload: _Workload) -> str:
        """Brings a running workload whose time is up to its scripted exit."""
        if workload.status == "running" and self._left(workload) <= 0:
            workload.status, workload.exit_code = "exited", workload.script.exit_code
        return workload.status

    def _end(self, handle: Handle, code: int, name: str) -> None:
        self._call(name)
        time.sleep(self.delays.get(name, 0.0))  # a stop or kill that takes its time
        with self._changed:
            workload = self._workloads.get(handle)
            if workload is not None and self._status(workload) == "running":
                workload.status, workload.exit_code = "exited", code
                self._changed.notify_all()


def _conforms(engine: FakeEngine) -> Engine:
    return engine  # mypy checks that the fake keeps the contract


class _FakeEvents:
    """The fake's event stream: what its containers do, from subscription on."""

    _END = ContainerEvent("", "")

    def __init__(self, labels: dict[str, str], engine: FakeEngine) -> None:
        self.labels = labels
        self._engine = engine
        self._queue: queue.Queue[ContainerEvent] = queue.Queue()

    def put(self, event: ContainerEvent) -> None:
        self._queue.put(event)

    def __iter__(self) -> Iterator[ContainerEvent]:
        while True:
            event = self._queue.get()
            if event is self._END:
                return
            yield event

    def close(self) -> None:
        self._engine._unlisten(self)
        self._queue.put(self._END)

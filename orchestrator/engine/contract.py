"""The engine contract: what the launcher, the service and the CLI need of a container
engine, in our own records (never Docker's dicts).

`DockerEngine` implements it against a real engine, `FakeEngine` in memory for fast
tests of the scheduling policies. One suite of contract tests (tests/integration/engine)
runs against both, so the fake cannot drift from the engine it stands in for.

A run's workload is addressed by a handle: an opaque string the engine gave at create
(a container id on Docker; an exec or a Swarm task id for the backends to come), so
callers never build or parse one. Every call returns within the engine client's
timeout; a call that cannot reach the engine raises EngineUnavailableError.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from orchestrator.hostpaths import MountPlan, NetworkRef, SelfContainer, VolumeFacts

# The labels on every workload we start, re-exported: the engine's users import them here.
from orchestrator.labels import JOB_LABEL as JOB_LABEL
from orchestrator.labels import LAUNCH_LABEL as LAUNCH_LABEL
from orchestrator.labels import MANAGED_LABEL as MANAGED_LABEL
from orchestrator.labels import RUN_LABEL as RUN_LABEL
from orchestrator.spec import PullPolicy

Handle = str


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create one job container."""

    name: str
    image: str
    labels: Mapping[str, str]
    command: Sequence[str] | None = None
    entrypoint: Sequence[str] | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    mounts: Sequence[MountPlan] = ()
    # "8080/tcp" -> (host_ip, host_port)
    ports: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    working_dir: str | None = None
    user: str | None = None
    memory: int | None = None
    cpus: float | None = None
    # Processes and threads at once (the pids cgroup); None: no limit.
    pids_limit: int | None = None
    network: str | None = None
    privileged: bool = False
    host_network: bool = False
    host_pid: bool = False
    # stderr joined to stdout, so the output keeps the order it was written in, where
    # the image allows it (see orchestrator.engine.docker.merging).
    merge_output: bool = False
    # The Swarm backend's alone (the Docker backend has no use for them).
    constraints: Sequence[str] = ()
    preferences: Sequence[str] = ()  # spread over a node label, e.g. node.labels.zone
    cpus_reserved: float | None = None
    memory_reserved: int | None = None
    port_mode: str = "ingress"  # ingress (the routing mesh) | host (the task's node)
    bind_on_every_node: bool = False


@dataclass(frozen=True)
class ExecTarget:
    """A container an exec job may run in, with what makes an exec into it a grant."""

    id: str
    name: str
    running: bool
    privileged: bool = False
    holds_socket: bool = False  # binds the engine's socket, or /run or /var/run


@dataclass(frozen=True)
class ExecSpec:
    """One command to run inside a running container (an exec job's workload). It runs
    under a small `sh` supervisor there, so that a stop ends it and its children."""

    container_id: str
    command: Sequence[str]
    user: str | None = None
    working_dir: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerExit:
    exit_code: int
    oom_killed: bool = False
    error: str | None = None


@dataclass(frozen=True)
class EngineFacts:
    version: str
    api_version: str
    name: str  # the engine host's name


@dataclass(frozen=True)
class WorkloadState:
    """Where a workload is in its life: created, running, exited (Docker's words)."""

    status: str
    running: bool
    exit_code: int | None = None
    oom_killed: bool = False


@dataclass(frozen=True)
class ManagedWorkload:
    """A workload carrying our labels."""

    handle: Handle
    job: str | None
    run_id: int | None
    status: str
    launch: str | None = None


@dataclass(frozen=True)
class LabelledContainer:
    """A container as label discovery sees it (any container, not only ours)."""

    id: str
    name: str
    labels: Mapping[str, str]
    running: bool
    created: float = 0.0
    networks: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()  # the named volumes it mounts


@dataclass(frozen=True)
class ContainerEvent:
    """A container's start, die, destroy or rename, as the engine's event stream says."""

    action: str
    id: str
    # The container's labels (and the engine's attributes) when the event carries them;
    # None when it does not say.
    labels: Mapping[str, str] | None = None


class ContainerEvents(Protocol):
    """A live stream of container events; close() (from any thread) ends the iteration."""

    def __iter__(self) -> Iterator[ContainerEvent]: ...

    def close(self) -> None: ...


class Engine(Protocol):
    """A container engine as the orchestrator uses it."""

    @property
    def api_version(self) -> tuple[int, int]: ...

    def facts(self) -> EngineFacts: ...

    def inspect_self(self, container_id: str, how: str) -> SelfContainer: ...

    def published_ports(self) -> set[tuple[str, int, str]]:
        """(host_ip, port, protocol) of every port a running workload publishes."""
        ...

    def network_exists(self, name: str) -> bool: ...

    def find_network(self, reference: str) -> NetworkRef | None:
        """The network a name, an id or a prefix of one names, as the engine resolves
        it when a container joins it; None when there is none."""

    def volume(self, name: str) -> VolumeFacts | None:
        """A named volume's driver, the host path it binds, its project; None: no such."""
        ...

    def ensure_image(
        self, reference: str, policy: PullPolicy, auth: Mapping[str, str] | None = None
    ) -> str:
        """The image's id, pulled as the policy says (ImageUnavailableError if it cannot)."""
        ...

    def create(self, spec: ContainerSpec) -> Handle: ...

    def exec_target(self, reference: str) -> ExecTarget | None:
        """The container a name or id names (running or not); None: there is none."""
        ...

    def exec_targets(self, selector: Mapping[str, str]) -> list[ExecTarget]:
        """The running containers carrying every label of `selector`, by name."""
        ...

    def create_exec(self, spec: ExecSpec) -> Handle:
        """An exec, not yet started; `start`, `wait`, `follow_output`, `output`, `stop`,
        `kill`, `state` and `remove` take its handle as a container's. Its output is
        stderr joined to stdout; `stop` ends its whole process group, or raises
        EngineError saying why it cannot (no `sh` in the container)."""
        ...

    def start(self, handle: Handle) -> None:
        """PortAllocatedError when a host port is taken outside our ledger."""
        ...

    def wait(self, handle: Handle, timeout: float | None) -> ContainerExit | None:
        """The exit, or None when it still runs after `timeout` seconds."""
        ...

    def state(self, handle: Handle) -> WorkloadState | None:
        """None when the workload does not exist (any more)."""
        ...

    def is_running(self, handle: Handle) -> bool: ...

    def follow_output(self, handle: Handle) -> Iterator[bytes]:
        """All output, live, to the workload's very end."""
        ...

    def output(self, handle: Handle) -> Iterator[bytes]:
        """The output so far, without following."""
        ...

    def stop(self, handle: Handle, grace_seconds: int = 10) -> None:
        """SIGTERM, then SIGKILL after the grace; a workload already gone is fine."""
        ...

    def kill(self, handle: Handle) -> None: ...

    def remove(self, handle: Handle) -> None:
        """Gone, running or not; a workload already gone is fine."""
        ...

    def discard_unstarted(self, handle: Handle) -> bool:
        """Remove a workload that is not running; False, and it stays, when it runs (one
        started meanwhile by a scheduler that only looked dead is followed, not killed)."""
        ...

    def managed(self, *, run_id: int | None = None) -> list[ManagedWorkload]: ...

    def containers(self, labels: Mapping[str, str]) -> list[LabelledContainer]:
        """Every container, running or not, that carries all these labels (one call)."""
        ...

    def container_events(self, labels: Mapping[str, str]) -> ContainerEvents:
        """From now on: the start, die, destroy and rename of containers carrying all
        these labels."""
        ...

    def close(self) -> None: ...

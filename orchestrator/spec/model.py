"""The job model: JobSpec and the records it holds, the policies' enums, and the
canonical dict form (`to_dict`, `masked_definition`). Pure: values only, no parsing
(that is orchestrator.spec.fields)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from functools import cached_property
from typing import Any

from orchestrator.schedule import Schedule, parse_schedule
from orchestrator.units import format_duration, format_size

# Environment names whose values are masked wherever a definition is shown.
SECRET_LOOKING_NAME = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|KEY|CREDENTIAL", re.IGNORECASE)
MASK = "***"


class Concurrency(StrEnum):
    ALLOW = "allow"
    FORBID = "forbid"  # the new fire is recorded as a skipped run
    REPLACE = "replace"  # the running run is cancelled, the new one starts


class CatchupPolicy(StrEnum):
    NONE = "none"
    LATEST = "latest"
    ALL = "all"


class JobKind(StrEnum):
    RUN = "run"  # a new container from `image`
    EXEC = "exec"  # `command` inside a running container (`container` or `selector`)


class Pick(StrEnum):
    ONE = "one"  # the first running match, by name
    ALL = "all"  # every running match, one after another


class PullPolicy(StrEnum):
    ALWAYS = "always"
    MISSING = "missing"
    NEVER = "never"


@dataclass(frozen=True)
class VolumeSpec:
    """`source:target[:ro|rw]`; an absolute source is a bind mount, anything else a named volume."""

    source: str
    target: str
    read_only: bool = False

    @property
    def is_bind(self) -> bool:
        return self.source.startswith("/")

    def __str__(self) -> str:
        return f"{self.source}:{self.target}{':ro' if self.read_only else ''}"


@dataclass(frozen=True)
class PortSpec:
    """`[hostport:]containerport[/tcp|udp]`; without a host port one is leased from the pool."""

    container_port: int
    protocol: str = "tcp"
    host_port: int | None = None

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.protocol}"

    def __str__(self) -> str:
        pinned = f"{self.host_port}:" if self.host_port is not None else ""
        return f"{pinned}{self.container_port}/{self.protocol}"


@dataclass(frozen=True)
class NotifySpec:
    """Where to tell about a job's runs, for the events in `on`: a webhook (a POST of
    the run's JSON, signed with the secret named `secret` when given) or an Apprise URL
    (Slack, Teams, e-mail, ntfy, ...: a title and a short message). `{{secret:NAME}}`
    in the URL is filled in at delivery, never stored."""

    url: str
    on: tuple[str, ...]
    secret: str | None = None
    kind: str = "webhook"  # or "apprise"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {self.kind: self.url, "on": list(self.on)}
        if self.secret is not None:
            data["secret"] = self.secret
        return data


NOTIFY_KINDS = ("webhook", "apprise")
# Events of a run that can be told; with retries, failed, timed_out and lost are told
# for the final attempt only; recovered is the first success after a final failure.
NOTIFY_EVENTS = (
    "started",
    "succeeded",
    "failed",
    "timed_out",
    "cancelled",
    "lost",
    "skipped",
    "recovered",
)
DEFAULT_NOTIFY_ON = ("failed", "timed_out", "lost")


@dataclass(frozen=True)
class SecretSpec:
    """A file of the service's secrets directory, given to the job at launch only:
    as the variable `env`, and/or mounted read-only at `file`. Never stored."""

    name: str
    env: str | None = None
    file: str | None = None

    def to_dict(self) -> dict[str, str]:
        data = {"name": self.name, "env": self.env, "file": self.file}
        return {key: value for key, value in data.items() if value is not None}


@dataclass(frozen=True)
class RetryPolicy:
    count: int = 0
    backoff: timedelta = timedelta(seconds=30)


@dataclass(frozen=True)
class CatchupSpec:
    policy: CatchupPolicy = CatchupPolicy.LATEST
    deadline: timedelta | None = None  # None: however long ago


@dataclass(frozen=True)
class Resources:
    memory: int | None = None  # bytes
    cpus: float | None = None
    pids: int | None = None  # processes and threads at once; None: the service's default


@dataclass(frozen=True)
class JobSpec:
    """One validated job definition. Build it with `parse_job`; `to_dict` gives it back."""

    name: str
    schedule: str
    image: str = ""  # empty for exec jobs
    timezone: str = "UTC"
    description: str | None = None
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str | None = None
    environment: tuple[tuple[str, str], ...] = ()
    secrets: tuple[SecretSpec, ...] = ()
    notify: tuple[NotifySpec, ...] = ()
    # A dead-man ping (healthchecks.io, Cronitor, Uptime Kuma): GET <ping>/start at the
    # start, <ping> on success, <ping>/fail on a final failure.
    ping: str | None = None
    # Jobs started when a run of this one succeeds, or finally fails (chains).
    on_success: tuple[str, ...] = ()
    on_failure: tuple[str, ...] = ()
    env_file: str | None = None  # KEY=VALUE lines read at launch, as the scheduler sees it
    volumes: tuple[VolumeSpec, ...] = ()
    ports: tuple[PortSpec, ...] = ()
    network: str | None = None
    timeout: timedelta | None = None
    # A scheduled fire that has not started this long after its time is skipped
    # (Kubernetes' startingDeadlineSeconds); None: it starts however late.
    start_deadline: timedelta | None = None
    retries: RetryPolicy = field(default_factory=RetryPolicy)
    concurrency: Concurrency = Concurrency.FORBID
    catchup: CatchupSpec = field(default_factory=CatchupSpec)
    resources: Resources = field(default_factory=Resources)
    user: str | None = None
    pull: PullPolicy = PullPolicy.MISSING
    # Dangerous: each is refused unless the service also permits privileged jobs.
    privileged: bool = False
    host_network: bool = False
    host_pid: bool = False
    docker_socket: bool = False  # mount the engine's socket at /var/run/docker.sock
    enabled: bool = True
    kind: JobKind = JobKind.RUN
    container: str | None = None  # an exec's target: a name or id...
    selector: tuple[tuple[str, str], ...] = ()  # ...or the labels its targets carry
    pick: Pick = Pick.ONE
    labels: tuple[tuple[str, str], ...] = ()  # put on a run job's containers

    @property
    def dangerous_requests(self) -> list[str]:
        """What the job asks for that gives it power over the host."""
        asked = {
            "privileged": self.privileged,
            "host_network": self.host_network or self.network == "host",
            "host_pid": self.host_pid,
            "docker_socket": self.docker_socket,
        }
        return [name for name, wanted in asked.items() if wanted]

    @cached_property
    def parsed_schedule(self) -> Schedule:
        return parse_schedule(self.schedule, self.timezone)

    def to_dict(self) -> dict[str, Any]:
        """The canonical, JSON-ready form: `parse_job(spec.to_dict()) == spec`."""
        data: dict[str, Any] = {
            "name": self.name,
            "schedule": self.schedule,
            "timezone": self.timezone,
        }
        if self.image:
            data["image"] = self.image
        optional: dict[str, Any] = {
            "description": self.description,
            "command": list(self.command) if self.command is not None else None,
            "entrypoint": list(self.entrypoint) if self.entrypoint is not None else None,
            "working_dir": self.working_dir,
            "environment": dict(self.environment) or None,
            "secrets": [secret.to_dict() for secret in self.secrets] or None,
            "notify": [target.to_dict() for target in self.notify] or None,
            "ping": self.ping,
            "on_success": list(self.on_success) or None,
            "on_failure": list(self.on_failure) or None,
            "env_file": self.env_file,
            "volumes": [str(volume) for volume in self.volumes] or None,
            "ports": [str(port) for port in self.ports] or None,
            "network": self.network,
            "timeout": format_duration(self.timeout) if self.timeout else None,
            "start_deadline": (
                format_duration(self.start_deadline) if self.start_deadline else None
            ),
            "user": self.user,
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        data["retries"] = {
            "count": self.retries.count,
            "backoff": format_duration(self.retries.backoff),
        }
        data["concurrency"] = self.concurrency.value
        data["catchup"] = {"policy": self.catchup.policy.value}
        if self.catchup.deadline is not None:
            data["catchup"]["deadline"] = format_duration(self.catchup.deadline)
        resources: dict[str, Any] = {}
        if self.resources.memory is not None:
            resources["memory"] = format_size(self.resources.memory)
        if self.resources.cpus is not None:
            resources["cpus"] = self.resources.cpus
        if self.resources.pids is not None:
            resources["pids"] = self.resources.pids
        if resources:
            data["resources"] = resources
        if self.kind is JobKind.RUN:
            data["pull"] = self.pull.value
        flags = {
            "privileged": self.privileged,
            "host_network": self.host_network,
            "host_pid": self.host_pid,
            "docker_socket": self.docker_socket,
        }
        data.update({name: True for name, wanted in flags.items() if wanted})
        data["enabled"] = self.enabled
        if self.kind is JobKind.EXEC:
            data["kind"] = self.kind.value
            if self.container is not None:
                data["container"] = self.container
            if self.selector:
                data["selector"] = dict(self.selector)
                data["pick"] = self.pick.value
        if self.labels:
            data["labels"] = dict(self.labels)
        return data


def masked_definition(spec: JobSpec) -> dict[str, Any]:
    """`to_dict` for showing: values of variables whose names look secret are masked."""
    data = spec.to_dict()
    if "environment" in data:
        data["environment"] = {
            key: MASK if SECRET_LOOKING_NAME.search(key) else value
            for key, value in data["environment"].items()
        }
    return data


@dataclass(frozen=True)
class LoadedJob:
    """A job and the file it came from."""

    spec: JobSpec
    source: str

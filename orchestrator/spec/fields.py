"""Job definitions: parse and validate YAML or dicts into frozen records. Pure: no DB, no Docker.

Every problem is reported as `<file>: job '<name>': <field>: <what is wrong>`, so an
operator can go straight to the line to fix.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import yaml

from orchestrator.errors import InvalidInputError, InvalidSpecError, quote
from orchestrator.schedule import Schedule, load_timezone, parse_schedule
from orchestrator.spec.yaml12 import load_all, written
from orchestrator.units import format_duration, format_size, parse_duration, parse_size

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]*")
NAME_MAX_LENGTH = 63
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SECRET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
# Docker's reference grammar (distribution/reference): what the engine would parse too,
# so that no name can reach the engine's URL path as something else (`x/../../images`).
_ALNUM = r"[a-z0-9]+"
_PATH_COMPONENT = rf"{_ALNUM}(?:(?:[._]|__|-+){_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_IMAGE_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
_NETWORK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# Environment names whose values are masked wherever a definition is shown.
SECRET_LOOKING_NAME = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|KEY|CREDENTIAL", re.IGNORECASE)
MASK = "***"
_PORT = re.compile(r"(?:(?P<host>\d+):)?(?P<container>\d+)(?:/(?P<protocol>tcp|udp))?")
RESERVED_ENV_PREFIX = "ORCHESTRATOR_"
JOB_FILE_SUFFIXES = (".yaml", ".yml")
_E = TypeVar("_E", bound=StrEnum)


class Concurrency(StrEnum):
    ALLOW = "allow"
    FORBID = "forbid"  # the new fire is recorded as a skipped run
    REPLACE = "replace"  # the running run is cancelled, the new one starts


class CatchupPolicy(StrEnum):
    NONE = "none"
    LATEST = "latest"
    ALL = "all"


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


@dataclass(frozen=True)
class JobSpec:
    """One validated job definition. Build it with `parse_job`; `to_dict` gives it back."""

    name: str
    schedule: str
    image: str
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
    def trigger(self) -> Schedule:
        return parse_schedule(self.schedule, self.timezone)

    def to_dict(self) -> dict[str, Any]:
        """The canonical, JSON-ready form: `parse_job(spec.to_dict()) == spec`."""
        data: dict[str, Any] = {
            "name": self.name,
            "schedule": self.schedule,
            "timezone": self.timezone,
            "image": self.image,
        }
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
        if resources:
            data["resources"] = resources
        data["pull"] = self.pull.value
        flags = {
            "privileged": self.privileged,
            "host_network": self.host_network,
            "host_pid": self.host_pid,
            "docker_socket": self.docker_socket,
        }
        data.update({name: True for name, wanted in flags.items() if wanted})
        data["enabled"] = self.enabled
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


class _Problem(Exception):
    """One invalid field; `path` is where it sits in the job (`retries.count`)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


# --- field parsers: each takes the raw value and the field path, returns the clean value ---


def _string(value: object, path: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _Problem(path, f"must be a string, not {_describe(value)}")
    if not allow_empty and not value.strip():
        raise _Problem(path, "must not be empty")
    return value


def _describe(value: object) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    kind = "int" if isinstance(value, int) else "float" if isinstance(value, float) else None
    return f"{kind or type(value).__name__} {quote(value)}"


def _mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Problem(path, f"must be a mapping, not {_describe(value)}")
    for key in value:
        if not isinstance(key, str):
            raise _Problem(path, f"key {quote(key)} must be a string")
    return value


def _known_keys(data: Mapping[str, Any], allowed: Iterable[str], path: str) -> None:
    allowed = list(allowed)
    for key in data:
        if key not in allowed:
            where = f"{path}.{key}" if path else key
            raise _Problem(where, f"unknown field (allowed: {', '.join(allowed)})")


def _name(value: object) -> str:
    name = _string(value, "name")
    if len(name) > NAME_MAX_LENGTH or not NAME_PATTERN.fullmatch(name):
        raise _Problem(
            "name",
            f"{quote(name)} is not a valid job name "
            f"([a-z0-9][a-z0-9_.-]*, at most {NAME_MAX_LENGTH} characters)",
        )
    return name


def _job_names(value: object, path: str) -> tuple[str, ...]:
    """A chain's targets: job names, each once."""
    names = []
    for index, item in enumerate(_sequence(value, path)):
        try:
            name = _name(item)
        except _Problem as problem:
            raise _Problem(f"{path}[{index}]", problem.message) from None
        if name in names:
            raise _Problem(f"{path}[{index}]", f"{quote(name)} is given twice")
        names.append(name)
    return tuple(names)


def _argv(value: object, path: str) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            parts = shlex.split(value)
        except ValueError as error:
            raise _Problem(path, f"cannot be split into words: {error}") from None
        if not parts:
            raise _Problem(path, "must not be empty")
        if "\x00" in value:
            raise _Problem(path, "contains a NUL byte, which no process can receive")
        return tuple(parts)
    if isinstance(value, list):
        if not value:
            raise _Problem(path, "must not be empty")
        return tuple(_scalar_text(item, f"{path}[{index}]") for index, item in enumerate(value))
    raise _Problem(path, f"must be a string or a list of strings, not {_describe(value)}")


def _scalar_text(value: object, path: str) -> str:
    """A command item or a variable's value: the text exactly as the file wrote it."""
    if isinstance(value, bool):
        word = "true" if value else "false"
        raise _Problem(path, f'{word} is read as a boolean: quote it ("{word}") to pass text')
    text = written(value)
    if text is None and isinstance(value, str | int | float):
        text = str(value)
    if text is None:
        raise _Problem(path, f"must be a string or number, not {_describe(value)}")
    if "\x00" in text:
        raise _Problem(path, "contains a NUL byte, which no process can receive")
    return text


def _environment(value: object) -> tuple[tuple[str, str], ...]:
    data = _mapping(value, "environment")
    result = []
    for key, item in data.items():
        if not _ENV_NAME.fullmatch(key):
            raise _Problem(f"environment.{key}", "is not a valid variable name")
        if key.upper().startswith(RESERVED_ENV_PREFIX):
            raise _Problem(
                f"environment.{key}", f"names starting {RESERVED_ENV_PREFIX} are set by us"
            )
        result.append((key, _scalar_text(item, f"environment.{key}")))
    return tuple(sorted(result))


def _volume(value: object, path: str) -> VolumeSpec:
    text = _string(value, path)
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise _Problem(path, f"{quote(text)} is not source:target or source:target:ro")
    source, target = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise _Problem(path, f"{quote(text)}: mode {quote(mode)} is not ro or rw")
    if source.startswith("/"):
        source = re.sub("/+", "/", source)
        if "/../" in f"{source}/" or "/./" in f"{source}/":
            raise _Problem(path, f"{quote(text)}: source must be a normalised absolute path")
        source = source.rstrip("/") or "/"
        if source == "/":
            raise _Problem(
                path,
                f"{quote(text)}: binding / (the whole machine) is never allowed: "
                "mount the directory the job needs",
            )
    elif source.startswith(".") or "/" in source:
        raise _Problem(
            path,
            f"{quote(text)}: a bind source must be an absolute path as the scheduler sees it",
        )
    elif not _VOLUME_NAME.fullmatch(source):
        raise _Problem(path, f"{quote(text)}: {quote(source)} is not a valid volume name")
    if not target.startswith("/"):
        raise _Problem(path, f"{quote(text)}: target {quote(target)} must be an absolute path")
    target = target.rstrip("/") or "/"
    if target == "/":
        raise _Problem(path, f"{quote(text)}: the target cannot be the job's / itself")
    if "//" in target or "/../" in f"{target}/" or "/./" in f"{target}/":
        raise _Problem(path, f"{quote(text)}: target {quote(target)} must be a normalised path")
    return VolumeSpec(source=source, target=target, read_only=mode == "ro")


def _port(value: object, path: str) -> PortSpec:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = _string(value, path)
    match = _PORT.fullmatch(text.strip())
    if match is None:
        raise _Problem(path, f"{quote(text)} is not a port (8080, 9000:9000 or 5353/udp)")
    container = int(match["container"])
    host = int(match["host"]) if match["host"] is not None else None
    for number in (container, host):
        if number is not None and not 1 <= number <= 65535:
            raise _Problem(path, f"{quote(text)}: {number} is not a port number (1-65535)")
    return PortSpec(container_port=container, protocol=match["protocol"] or "tcp", host_port=host)


def _network(value: object) -> str:
    name = _string(value, "network").strip()
    if name.startswith("container:"):
        raise _Problem(
            "network",
            f"{quote(name)}: joining another container's namespaces is never allowed",
        )
    if not _NETWORK_NAME.fullmatch(name):
        raise _Problem("network", f"{quote(name)} is not a network name")
    return name


def _secret(value: object, path: str) -> SecretSpec:
    data = _mapping(value, path)
    _known_keys(data, ("name", "env", "file"), path)
    if data.get("name") is None:
        raise _Problem(f"{path}.name", "is required")
    name = _string(data["name"], f"{path}.name")
    if not _SECRET_NAME.fullmatch(name):
        raise _Problem(
            f"{path}.name",
            f"{quote(name)} is not a secret's file name ([A-Za-z0-9][A-Za-z0-9_.-]*)",
        )
    env = None
    if data.get("env") is not None:
        env = _string(data["env"], f"{path}.env")
        if not _ENV_NAME.fullmatch(env):
            raise _Problem(f"{path}.env", f"{quote(env)} is not a valid variable name")
        if env.upper().startswith(RESERVED_ENV_PREFIX):
            raise _Problem(f"{path}.env", f"names starting {RESERVED_ENV_PREFIX} are set by us")
    file = _absolute(data["file"], f"{path}.file") if data.get("file") is not None else None
    if file is not None:
        if "/../" in f"{file}/" or "/./" in f"{file}/" or file.rstrip("/") in ("", "/"):
            raise _Problem(f"{path}.file", f"{quote(file)} is not a normalised path to a file")
        file = file.rstrip("/")
    if env is None and file is None:
        raise _Problem(path, "give the secret as `env: NAME`, `file: /path`, or both")
    return SecretSpec(name=name, env=env, file=file)


_SECRET_PLACEHOLDER = re.compile(r"\{\{secret:([^}]*)\}\}")


def _http_url(value: object, path: str) -> str:
    """An http(s) URL with no password in it ({{secret:NAME}} placeholders allowed)."""
    return _url(value, path, ("http", "https"))


def _url(value: object, path: str, schemes: tuple[str, ...] | None) -> str:
    """A URL of one of `schemes` (None: any, as Apprise's are), with no password in it
    ({{secret:NAME}} placeholders allowed)."""
    url = _string(value, path).strip()
    scheme, _, rest = url.partition("://")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    host = authority.rsplit("@", 1)[-1]
    known = schemes is None and re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme.lower())
    if (
        not (known or scheme.lower() in (schemes or ()))
        or not rest
        or (schemes is not None and not host)
        or any(c.isspace() for c in url)
    ):
        if schemes is None:
            raise _Problem(
                path, f"{quote(url)} is not an Apprise URL (like mailto://, slack://, ntfy://)"
            )
        expected = " or ".join(f"{name}://" for name in schemes)
        raise _Problem(path, f"{quote(url)} is not an {expected} URL")
    for name in _SECRET_PLACEHOLDER.findall(url):
        if not _SECRET_NAME.fullmatch(name):
            raise _Problem(path, f"{{{{secret:{quote(name)}}}}} names no secret file")
    if "@" in authority and not _SECRET_PLACEHOLDER.search(authority.rsplit("@", 1)[0]):
        raise _Problem(
            path,
            "a password in the URL would be stored and shown: write {{secret:NAME}} "
            "instead, read from the secrets directory at delivery",
        )
    return url


NOTIFY_KINDS = ("webhook", "apprise")


def _notify_target(value: object, path: str) -> NotifySpec:
    data = _mapping(value, path)
    _known_keys(data, (*NOTIFY_KINDS, "secret", "on"), path)
    given = [kind for kind in NOTIFY_KINDS if data.get(kind) is not None]
    if len(given) != 1:
        raise _Problem(
            path,
            "needs one of webhook (an http:// or https:// URL) or apprise (an Apprise URL)"
            if not given
            else "has both webhook and apprise: one receiver each",
        )
    (kind,) = given
    if kind == "webhook":
        url = _http_url(data["webhook"], f"{path}.webhook")
    else:
        url = _url(data["apprise"], f"{path}.apprise", None)
    secret = None
    if data.get("secret") is not None:
        if kind != "webhook":
            raise _Problem(
                f"{path}.secret",
                "signs webhooks only; put {{secret:NAME}} in the Apprise URL instead",
            )
        secret = _string(data["secret"], f"{path}.secret")
        if not _SECRET_NAME.fullmatch(secret):
            raise _Problem(f"{path}.secret", f"{quote(secret)} is not a secret's file name")
    on: tuple[str, ...] = DEFAULT_NOTIFY_ON
    if data.get("on") is not None:
        events = [_string(item, f"{path}.on") for item in _sequence(data["on"], f"{path}.on")]
        unknown = [event for event in events if event not in NOTIFY_EVENTS]
        if unknown:
            raise _Problem(
                f"{path}.on",
                f"{quote(unknown[0])} is not an event ({', '.join(NOTIFY_EVENTS)})",
            )
        if not events:
            raise _Problem(f"{path}.on", "names no event")
        on = tuple(sorted(set(events), key=NOTIFY_EVENTS.index))
    return NotifySpec(url=url, on=on, secret=secret, kind=kind)


def _notify(value: object) -> tuple[NotifySpec, ...]:
    targets = [
        _notify_target(item, f"notify[{i}]") for i, item in enumerate(_sequence(value, "notify"))
    ]
    seen: set[str] = set()
    for index, target in enumerate(targets):
        if target.url in seen:
            raise _Problem(f"notify[{index}].{target.kind}", "is given twice")
        seen.add(target.url)
    return tuple(targets)


def _secrets(value: object) -> tuple[SecretSpec, ...]:
    secrets = [_secret(item, f"secrets[{i}]") for i, item in enumerate(_sequence(value, "secrets"))]
    envs: set[str] = set()
    files: set[str] = set()
    for index, secret in enumerate(secrets):
        if secret.env is not None:
            if secret.env in envs:
                raise _Problem(f"secrets[{index}].env", f"{secret.env} is set twice")
            envs.add(secret.env)
        if secret.file is not None:
            if secret.file in files:
                raise _Problem(f"secrets[{index}].file", f"{secret.file} is mounted twice")
            files.add(secret.file)
    return tuple(secrets)


def _sequence(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Problem(path, f"must be a list, not {_describe(value)}")
    return value


def _volumes(value: object) -> tuple[VolumeSpec, ...]:
    volumes = [_volume(item, f"volumes[{i}]") for i, item in enumerate(_sequence(value, "volumes"))]
    seen: set[str] = set()
    for index, volume in enumerate(volumes):
        if volume.target in seen:
            raise _Problem(f"volumes[{index}]", f"target {volume.target} is mounted twice")
        seen.add(volume.target)
    return tuple(volumes)


def _ports(value: object) -> tuple[PortSpec, ...]:
    ports = [_port(item, f"ports[{i}]") for i, item in enumerate(_sequence(value, "ports"))]
    keys: set[str] = set()
    pinned: set[tuple[int, str]] = set()
    for index, port in enumerate(ports):
        if port.key in keys:
            raise _Problem(f"ports[{index}]", f"container port {port.key} is listed twice")
        keys.add(port.key)
        if port.host_port is not None:
            if (port.host_port, port.protocol) in pinned:
                raise _Problem(f"ports[{index}]", f"host port {port.host_port} is pinned twice")
            pinned.add((port.host_port, port.protocol))
    return tuple(ports)


def _duration(value: object, path: str) -> timedelta:
    try:
        return parse_duration(value)
    except InvalidInputError as error:
        raise _Problem(path, str(error)) from None


def _integer(value: object, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Problem(path, f"must be a whole number, not {_describe(value)}")
    if not low <= value <= high:
        raise _Problem(path, f"{quote(value)} is not between {low} and {high}")
    return int(value)


def _choice(value: object, path: str, kind: type[_E]) -> _E:
    allowed = [member.value for member in kind]
    if not isinstance(value, str) or value not in allowed:
        raise _Problem(path, f"{quote(value)} is not one of {', '.join(allowed)}")
    return kind(value)


def _retries(value: object) -> RetryPolicy:
    data = _mapping(value, "retries")
    _known_keys(data, ("count", "backoff"), "retries")
    default = RetryPolicy()
    return RetryPolicy(
        count=_integer(data["count"], "retries.count", 0, 100) if "count" in data else 0,
        backoff=(
            _duration(data["backoff"], "retries.backoff") if "backoff" in data else default.backoff
        ),
    )


def _catchup(value: object) -> CatchupSpec:
    if isinstance(value, str):  # shorthand: `catchup: none`
        value = {"policy": value}
    data = _mapping(value, "catchup")
    _known_keys(data, ("policy", "deadline"), "catchup")
    policy = (
        _choice(data["policy"], "catchup.policy", CatchupPolicy)
        if "policy" in data
        else CatchupSpec().policy
    )
    deadline = data.get("deadline")
    return CatchupSpec(
        policy=policy,
        deadline=_duration(deadline, "catchup.deadline") if deadline is not None else None,
    )


def _resources(value: object) -> Resources:
    data = _mapping(value, "resources")
    _known_keys(data, ("memory", "cpus"), "resources")
    memory = None
    if data.get("memory") is not None:
        try:
            memory = parse_size(data["memory"])
        except InvalidInputError as error:
            raise _Problem("resources.memory", str(error)) from None
        if memory < 6 * 1024 * 1024:
            raise _Problem("resources.memory", "the engine needs at least 6m")
    cpus = data.get("cpus")
    if cpus is not None:
        if isinstance(cpus, bool) or not isinstance(cpus, int | float) or not 0 < cpus <= 1024:
            raise _Problem("resources.cpus", f"{quote(cpus)} is not a positive number of CPUs")
        cpus = float(cpus)
    return Resources(memory=memory, cpus=cpus)


def _user(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = _string(value, "user")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?", text):
        raise _Problem("user", f"{quote(text)} is not user, uid, user:group or uid:gid")
    return text


def _bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise _Problem(path, f"must be true or false, not {_describe(value)}")
    return value


def _schedule(value: object, timezone: str) -> str:
    text = " ".join(_string(value, "schedule").split())
    try:
        parse_schedule(text, timezone)
    except InvalidInputError as error:
        raise _Problem("schedule", str(error)) from None
    return text


def _timezone(value: object) -> str:
    name = _string(value, "timezone")
    try:
        load_timezone(name)
    except InvalidInputError as error:
        raise _Problem("timezone", str(error)) from None
    return name


FIELDS = (
    "name",
    "description",
    "schedule",
    "timezone",
    "image",
    "command",
    "entrypoint",
    "working_dir",
    "environment",
    "secrets",
    "notify",
    "ping",
    "on_success",
    "on_failure",
    "env_file",
    "volumes",
    "ports",
    "network",
    "timeout",
    "start_deadline",
    "retries",
    "concurrency",
    "catchup",
    "resources",
    "user",
    "pull",
    "privileged",
    "host_network",
    "host_pid",
    "docker_socket",
    "enabled",
)
REQUIRED = ("name", "schedule", "image")


def _build(data: Mapping[str, Any]) -> JobSpec:
    _known_keys(data, FIELDS, "")
    for key in REQUIRED:
        if data.get(key) is None:
            raise _Problem(key, "is required")
    name = _name(data["name"])
    timezone = _timezone(data["timezone"]) if data.get("timezone") is not None else "UTC"
    values: dict[str, Any] = {
        "name": name,
        "timezone": timezone,
        "schedule": _schedule(data["schedule"], timezone),
        "image": _string(data["image"], "image").strip(),
    }
    if data.get("host_network") and data.get("network") is not None:
        raise _Problem("network", "cannot be combined with host_network: true")
    if not _IMAGE_REFERENCE.fullmatch(values["image"]) or len(values["image"]) > 255:
        raise _Problem(
            "image",
            f"{quote(values['image'])} is not an image reference "
            "([registry/]name[:tag][@digest], the name in lower case)",
        )
    parsers: dict[str, Any] = {
        "description": lambda v: _string(v, "description", allow_empty=True),
        "command": lambda v: _argv(v, "command"),
        "entrypoint": lambda v: _argv(v, "entrypoint"),
        "working_dir": lambda v: _absolute(v, "working_dir"),
        "environment": _environment,
        "secrets": _secrets,
        "notify": _notify,
        "ping": lambda v: _http_url(v, "ping"),
        "on_success": lambda v: _job_names(v, "on_success"),
        "on_failure": lambda v: _job_names(v, "on_failure"),
        "env_file": lambda v: _absolute(v, "env_file"),
        "volumes": _volumes,
        "ports": _ports,
        "network": _network,
        "timeout": lambda v: _duration(v, "timeout"),
        "start_deadline": lambda v: _duration(v, "start_deadline"),
        "retries": _retries,
        "concurrency": lambda v: _choice(v, "concurrency", Concurrency),
        "catchup": _catchup,
        "resources": _resources,
        "user": _user,
        "pull": lambda v: _choice(v, "pull", PullPolicy),
        "privileged": lambda v: _bool(v, "privileged"),
        "host_network": lambda v: _bool(v, "host_network"),
        "host_pid": lambda v: _bool(v, "host_pid"),
        "docker_socket": lambda v: _bool(v, "docker_socket"),
        "enabled": lambda v: _bool(v, "enabled"),
    }
    for key, parse in parsers.items():
        if data.get(key) is not None:
            values[key] = parse(data[key])
    _cross_checks(values)
    return JobSpec(**values)


def _cross_checks(values: Mapping[str, Any]) -> None:
    """Fields that must agree with each other."""
    variables = {key for key, _ in values.get("environment", ())}
    targets = {volume.target for volume in values.get("volumes", ())}
    for index, secret in enumerate(values.get("secrets", ())):
        if secret.env in variables:
            raise _Problem(f"secrets[{index}].env", f"{secret.env} is also in environment")
        if secret.file in targets:
            raise _Problem(f"secrets[{index}].file", f"{secret.file} is also a volume target")


def _absolute(value: object, path: str) -> str:
    text = _string(value, path)
    if not text.startswith("/"):
        raise _Problem(path, f"{quote(text)} must be an absolute path")
    return text


def _label(data: object, index: int | None) -> str:
    if isinstance(data, Mapping) and isinstance(data.get("name"), str) and data["name"]:
        return f"job {quote(data['name'])}"
    return f"job #{index + 1}" if index is not None else "job"


def parse_job(data: object, source: str | None = None, index: int | None = None) -> JobSpec:
    """Validate one job definition (a mapping) into a JobSpec, or raise InvalidSpecError."""
    prefix = f"{source}: " if source else ""
    try:
        return _build(_mapping(data, ""))
    except _Problem as problem:
        where = f"{problem.path}: " if problem.path else ""
        raise InvalidSpecError(f"{prefix}{_label(data, index)}: {where}{problem.message}") from None


def _documents(text: str, source: str) -> list[object]:
    try:
        return load_all(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        hint = ""
        if any(
            clue in str(problem)
            for clue in ("cannot start any token", "alias", "alphabetic or numeric")
        ):
            hint = " (quote values that start with *, @ or &)"
        raise InvalidSpecError(f"{source}: {where}invalid YAML: {problem}{hint}") from None
    except RecursionError:
        raise InvalidSpecError(f"{source}: invalid YAML: nested too deeply") from None


def parse_jobs_text(text: str, source: str) -> list[JobSpec]:
    """All jobs in one YAML text (a job, a list of jobs, or several documents)."""
    specs: list[JobSpec] = []
    problems: list[str] = []
    for document in _documents(text, source):
        if document is None:
            continue
        items = document if isinstance(document, list) else [document]
        for item in items:
            index = len(specs) + len(problems)
            try:
                specs.append(parse_job(item, source, index))
            except InvalidSpecError as error:
                problems.append(str(error))
    if problems:
        raise InvalidSpecError("\n".join(problems))
    return specs


def job_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Expand files and folders (recursively, *.yaml and *.yml, in name order) into files."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(item for item in path.rglob("*") if item.suffix in JOB_FILE_SUFFIXES)
            for item in found:
                if item.is_symlink() and not item.exists():
                    raise InvalidSpecError(f"{item}: a symbolic link to nothing")
            yield from (item for item in found if item.is_file())
        elif path.is_file():
            yield path
        else:
            raise InvalidSpecError(f"{raw}: no such file or folder")


def load_jobs(paths: Iterable[str | Path]) -> list[LoadedJob]:
    """Every job in the given files and folders, validated as one batch.

    All problems are collected; if there are any, InvalidSpecError carries one line for
    each and nothing is returned, so a caller never acts on half a batch.
    """
    texts: list[tuple[str, str]] = []
    problems: list[str] = []
    for file in job_files(paths):
        try:
            texts.append((str(file), file.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as error:
            problems.append(f"{file}: cannot read: {error}")
    return load_job_texts(texts, problems)


def load_job_texts(
    texts: Iterable[tuple[str, str]], problems: list[str] | None = None
) -> list[LoadedJob]:
    """Every job in (source, YAML text) pairs, validated as one batch (as `load_jobs`):
    the way a job file sent to the HTTP API is read."""
    loaded: list[LoadedJob] = []
    problems = list(problems or [])
    seen: dict[str, str] = {}
    for source, text in texts:
        try:
            specs = parse_jobs_text(text, source)
        except InvalidSpecError as error:
            problems.extend(str(error).splitlines())
            continue
        for spec in specs:
            if spec.name in seen:
                problems.append(
                    f"{source}: job {quote(spec.name)}: name: also defined in {seen[spec.name]}"
                )
                continue
            seen[spec.name] = source
            loaded.append(LoadedJob(spec=spec, source=source))
    if problems:
        raise InvalidSpecError("\n".join(problems))
    return loaded


def parse_default_notify(text: str, setting: str) -> tuple[NotifySpec, ...]:
    """The service-wide receivers told of the runs of jobs that name none (failed,
    timed_out and lost): whitespace-separated URLs, http(s) ones webhooks, any other
    an Apprise URL."""
    targets = []
    for url in text.split():
        webhook = url.lower().startswith(("http://", "https://"))
        try:
            targets.append(
                NotifySpec(
                    url=_url(url, setting, ("http", "https") if webhook else None),
                    on=DEFAULT_NOTIFY_ON,
                    kind="webhook" if webhook else "apprise",
                )
            )
        except _Problem as problem:
            raise InvalidSpecError(f"{setting}: {problem.message}") from None
    return tuple(targets)

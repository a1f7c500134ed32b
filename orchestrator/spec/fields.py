"""Every key of a job definition, in one table: its parser and whether it is required;
`parse_job` reads a mapping with it into a JobSpec. Pure: no DB, no Docker.

Every problem is reported as `<file>: job '<name>': <field>: <what is wrong>`, so an
operator can go straight to the line to fix.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import InvalidInputError, InvalidSpecError, quote
from orchestrator.policies.columns import URL_LENGTH
from orchestrator.schedule import load_timezone, parse_schedule
from orchestrator.settings import MAX_PIDS
from orchestrator.spec import exec_keys
from orchestrator.spec.model import (
    DEFAULT_NOTIFY_ON,
    NOTIFY_EVENTS,
    NOTIFY_KINDS,
    CatchupPolicy,
    CatchupSpec,
    Concurrency,
    JobKind,
    JobSpec,
    NotifySpec,
    Pick,
    PortSpec,
    PullPolicy,
    Resources,
    RetryPolicy,
    SecretSpec,
    VolumeSpec,
)
from orchestrator.spec.values import (
    _SECRET_NAME,
    _absolute,
    _bool,
    _choice,
    _describe,
    _duration,
    _http_url,
    _integer,
    _known_keys,
    _mapping,
    _Problem,
    _sequence,
    _string,
    _url,
)
from orchestrator.spec.yaml12 import written
from orchestrator.units import parse_size

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]*")
NAME_MAX_LENGTH = 63
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
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
_PORT = re.compile(
    r"(?:(?P<host>[0-9]{1,9}):)?(?P<container>[0-9]{1,9})(?:/(?P<protocol>tcp|udp))?"
)
RESERVED_ENV_PREFIX = "ORCHESTRATOR_"


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
    _known_keys(data, ("memory", "cpus", "pids"), "resources")
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
    pids = None
    if data.get("pids") is not None:
        pids = _integer(data["pids"], "resources.pids", 1, MAX_PIDS)
    return Resources(memory=memory, cpus=cpus, pids=pids)


def _user(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = _string(value, "user")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?", text):
        raise _Problem("user", f"{quote(text)} is not user, uid, user:group or uid:gid")
    return text


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


# A parser takes a key's raw value (never None: an absent or empty key keeps JobSpec's
# default) and the fields read before it, and returns the clean value or raises _Problem.
Parser = Callable[[Any, Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Field:
    """How one key of a job is read."""

    parse: Parser
    required: bool = False


# Every key of a job, in the order `unknown field` lists them. Each row is the JobSpec
# field of the same name; tests/unit/test_spec_fields.py holds the two together.
TABLE: dict[str, Field] = {
    "name": Field(lambda v, _: _name(v), required=True),
    "description": Field(lambda v, _: _string(v, "description", allow_empty=True)),
    "schedule": Field(lambda v, read: _schedule(v, read.get("timezone", "UTC")), required=True),
    "timezone": Field(lambda v, _: _timezone(v)),
    "image": Field(lambda v, _: _string(v, "image").strip()),  # run jobs: exec_keys
    "command": Field(lambda v, _: _argv(v, "command")),
    "entrypoint": Field(lambda v, _: _argv(v, "entrypoint")),
    "working_dir": Field(lambda v, _: _absolute(v, "working_dir")),
    "environment": Field(lambda v, _: _environment(v)),
    "secrets": Field(lambda v, _: _secrets(v)),
    "notify": Field(lambda v, _: _notify(v)),
    # Room for the longest suffix a ping is sent to (`/start`).
    "ping": Field(lambda v, _: _http_url(v, "ping", URL_LENGTH - len("/start"))),
    "on_success": Field(lambda v, _: _job_names(v, "on_success")),
    "on_failure": Field(lambda v, _: _job_names(v, "on_failure")),
    "env_file": Field(lambda v, _: _absolute(v, "env_file")),
    "volumes": Field(lambda v, _: _volumes(v)),
    "ports": Field(lambda v, _: _ports(v)),
    "network": Field(lambda v, _: _network(v)),
    "timeout": Field(lambda v, _: _duration(v, "timeout")),
    "start_deadline": Field(lambda v, _: _duration(v, "start_deadline")),
    "retries": Field(lambda v, _: _retries(v)),
    "concurrency": Field(lambda v, _: _choice(v, "concurrency", Concurrency)),
    "catchup": Field(lambda v, _: _catchup(v)),
    "resources": Field(lambda v, _: _resources(v)),
    "user": Field(lambda v, _: _user(v)),
    "pull": Field(lambda v, _: _choice(v, "pull", PullPolicy)),
    "privileged": Field(lambda v, _: _bool(v, "privileged")),
    "host_network": Field(lambda v, _: _bool(v, "host_network")),
    "host_pid": Field(lambda v, _: _bool(v, "host_pid")),
    "docker_socket": Field(lambda v, _: _bool(v, "docker_socket")),
    "enabled": Field(lambda v, _: _bool(v, "enabled")),
    "kind": Field(lambda v, _: _choice(v, "kind", JobKind)),
    "container": Field(lambda v, _: exec_keys.container_ref(v)),
    "selector": Field(lambda v, _: exec_keys.selector(v)),
    "pick": Field(lambda v, _: _choice(v, "pick", Pick)),
    "labels": Field(lambda v, _: exec_keys.labels(v)),
}
FIELDS = tuple(TABLE)
REQUIRED = tuple(key for key, row in TABLE.items() if row.required)
# Read before the rest, in this order: the schedule is read in the job's time zone.
_FIRST = ("name", "kind", "timezone", "schedule", "image")
_REST = tuple(key for key in TABLE if key not in _FIRST)


def _build(data: Mapping[str, Any]) -> JobSpec:
    _known_keys(data, FIELDS, "")
    for key in REQUIRED:
        if data.get(key) is None:
            raise _Problem(key, "is required")
    values: dict[str, Any] = {}
    _read(data, _FIRST, values)
    if data.get("host_network") and data.get("network") is not None:
        raise _Problem("network", "cannot be combined with host_network: true")
    exec_keys.check_kind(data, values)
    image = values.get("image")
    if image is not None and (not _IMAGE_REFERENCE.fullmatch(image) or len(image) > 255):
        raise _Problem(
            "image",
            f"{quote(values['image'])} is not an image reference "
            "([registry/]name[:tag][@digest], the name in lower case)",
        )
    _read(data, _REST, values)
    _cross_checks(values)
    return JobSpec(**values)


def _read(data: Mapping[str, Any], keys: tuple[str, ...], values: dict[str, Any]) -> None:
    for key in keys:
        if data.get(key) is not None:
            values[key] = TABLE[key].parse(data[key], values)


def _cross_checks(values: Mapping[str, Any]) -> None:
    """Fields that must agree with each other."""
    variables = {key for key, _ in values.get("environment", ())}
    targets = {volume.target for volume in values.get("volumes", ())}
    for index, secret in enumerate(values.get("secrets", ())):
        if secret.env in variables:
            raise _Problem(f"secrets[{index}].env", f"{secret.env} is also in environment")
        if secret.file in targets:
            raise _Problem(f"secrets[{index}].file", f"{secret.file} is also a volume target")


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

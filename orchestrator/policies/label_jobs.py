"""Jobs from container labels: reading them, grouping replicas, and the label policy. Pure.

A reader turns one container's labels into job mappings (the job file's keys). Readers
are registered by prefix (ORCHESTRATOR_LABEL_PREFIXES chooses which run); the built-in
`orchestrator` reader reads `orchestrator.job.<name>.<key>=<value>`: a value starting
with `[` or `{` is JSON, `true`/`false` and numbers are themselves, the rest is text;
a dotted key (`environment.X=v`, `retries.count=3`) sets one entry of a mapping.

Label authors are the least trusted writers we have: whoever may only set labels on a
container must not get more than that container has. So unless the operator trusts
labels, a label job gets no grant, no bind mount, no volume its container does not
mount, no network beyond its container's, no secret, no env_file, no pinned host port,
no chain to another source's job, and execs only into its own container (or its compose
service's replicas). `label_refusal` names the first key that breaks that.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.labels import MANAGED_LABEL
from orchestrator.spec import FIELDS, JobSpec
from orchestrator.spec.dropin.labels import PREFIXES as DROPIN_PREFIXES
from orchestrator.spec.dropin.labels import read_labels

ORCHESTRATOR_PREFIX = "orchestrator"
JOB_KEY_PREFIX = "orchestrator.job."
SOURCE_PREFIX = "label:"
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
MODES = ("on", "trusted", "off")
_INT = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?[0-9]+\.[0-9]+")


@dataclass(frozen=True)
class ContainerFacts:
    """What the label policy and the readers know of a container."""

    id: str
    name: str
    labels: Mapping[str, str]
    running: bool = True
    created: float = 0.0
    networks: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()  # named volumes it mounts

    @property
    def service(self) -> tuple[str, str] | None:
        """(compose project, service) when compose made it."""
        project, service = self.labels.get(COMPOSE_PROJECT), self.labels.get(COMPOSE_SERVICE)
        return (project, service) if project and service else None


@dataclass(frozen=True)
class LabelJob:
    """One job a reader found: its name, the job file's mapping, and the name it had
    in the labels (a dialect may rename). `problem`: why it cannot be read."""

    name: str
    mapping: dict[str, Any]
    original: str
    problem: str | None = None


Reader = Callable[[Mapping[str, str], ContainerFacts], list[LabelJob]]
READERS: dict[str, Reader] = {}


def register_reader(prefix: str, reader: Reader) -> None:
    READERS[prefix] = reader


def may_define_jobs(labels: Mapping[str, str] | None, prefixes: Iterable[str]) -> bool:
    """Whether a container with these labels can define label jobs (None: not known, so
    it may): not a job's own container, and a key under one of the readers' prefixes.
    A container's labels never change, so one that cannot never will."""
    if labels is None:
        return True
    if labels.get(MANAGED_LABEL) == "true":
        return False
    starts = tuple(
        JOB_KEY_PREFIX if prefix == ORCHESTRATOR_PREFIX else f"{prefix}." for prefix in prefixes
    )
    return any(key.startswith(starts) for key in labels)


def parse_prefixes(text: str) -> tuple[str, ...]:
    """ORCHESTRATOR_LABEL_PREFIXES: ValueError naming an unknown reader."""
    prefixes = tuple(part.strip() for part in text.split(",") if part.strip())
    for prefix in prefixes:
        if prefix not in READERS:
            raise ValueError(
                f"label prefix {prefix!r} has no reader (known: {', '.join(sorted(READERS))})"
            )
    return prefixes


def parse_filter(text: str) -> dict[str, str]:
    """ORCHESTRATOR_LABEL_FILTER (`key=value,...`): ValueError naming a bad part."""
    wanted: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, equals, value = part.partition("=")
        if not equals or not key.strip():
            raise ValueError(f"label filter part {part!r} is not key=value")
        wanted[key.strip()] = value.strip()
    return wanted


def parse_mode(text: str) -> str:
    mode = text.strip().lower()
    if mode not in MODES:
        raise ValueError(f"label jobs {text!r} is not one of {', '.join(MODES)}")
    return mode


def matches(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in wanted.items())


def _scalar(text: str) -> Any:
    if text[:1] in ("[", "{"):
        return json.loads(text)
    if text in ("true", "false"):
        return text == "true"
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def _split(rest: str) -> tuple[str, list[str]] | None:
    """`<name>.<key>[.<entry>...]`: job names may hold dots, so the key is the first
    part (after at least one of the name) that is a job key."""
    parts = rest.split(".")
    for index in range(1, len(parts)):
        if parts[index] in FIELDS:
            return ".".join(parts[:index]), parts[index:]
    return None


def read_orchestrator(labels: Mapping[str, str], facts: ContainerFacts) -> list[LabelJob]:
    """The built-in reader: `orchestrator.job.<name>.<key>=<value>`."""
    jobs: dict[str, dict[str, Any]] = {}
    problems: dict[str, str] = {}
    for key in sorted(labels):
        if not key.startswith(JOB_KEY_PREFIX):
            continue
        split = _split(key[len(JOB_KEY_PREFIX) :])
        if split is None:
            name = key[len(JOB_KEY_PREFIX) :].rpartition(".")[0] or key
            problems.setdefault(name, f"label {key!r}: no job key in it")
            continue
        name, path = split
        value = labels[key]
        mapping = jobs.setdefault(name, {"name": name})
        try:
            # An environment entry is text as written; other values are read.
            item = value if path[0] == "environment" else _scalar(value)
        except ValueError as error:
            problems.setdefault(name, f"label {key!r}: not JSON: {error}")
            continue
        target = mapping
        for part in path[:-1]:
            nested = target.setdefault(part, {})
            if not isinstance(nested, dict):
                problems.setdefault(name, f"label {key!r}: {part} is set twice")
                break
            target = nested
        else:
            if path[-1] in target and len(path) == 1 and isinstance(target[path[-1]], dict):
                problems.setdefault(name, f"label {key!r}: {path[-1]} is set twice")
            target[path[-1]] = item
    names = sorted(set(jobs) | set(problems))
    return [
        LabelJob(name, jobs.get(name, {"name": name}), name, problems.get(name)) for name in names
    ]


def _dropin_reader(prefix: str) -> Reader:
    """Ofelia's or deck-chores' labels, with their meanings (spec/dropin)."""

    def read(labels: Mapping[str, str], facts: ContainerFacts) -> list[LabelJob]:
        return [LabelJob(*job) for job in read_labels(prefix, labels, facts.name)]

    return read


register_reader(ORCHESTRATOR_PREFIX, read_orchestrator)
for _prefix in DROPIN_PREFIXES:
    register_reader(_prefix, _dropin_reader(_prefix))


@dataclass(frozen=True)
class Group:
    """The containers that make one set of label jobs: one container, or the replicas
    of one compose service. `source` is what the jobs' source column says."""

    source: str
    members: tuple[ContainerFacts, ...]

    @property
    def leader(self) -> ContainerFacts:
        """Whose labels are read: a running member first, then by name."""
        return sorted(self.members, key=lambda c: (not c.running, c.name))[0]

    @property
    def running(self) -> bool:
        return any(member.running for member in self.members)

    @property
    def created(self) -> float:
        return min(member.created for member in self.members)


def source_of(container: ContainerFacts) -> str:
    service = container.service
    if service is not None:
        return f"{SOURCE_PREFIX}{service[0]}-{service[1]}"
    return f"{SOURCE_PREFIX}{container.name}"


def group(containers: Iterable[ContainerFacts]) -> list[Group]:
    """Containers by source (the replicas of a compose service together), oldest first."""
    found: dict[str, list[ContainerFacts]] = {}
    for container in containers:
        found.setdefault(source_of(container), []).append(container)
    groups = [Group(source, tuple(members)) for source, members in found.items()]
    return sorted(groups, key=lambda g: (g.created, g.source))


def with_target(mapping: dict[str, Any], leader: ContainerFacts) -> dict[str, Any]:
    """An exec label job that names no target runs in its own container, or in one
    running replica of its compose service."""
    if mapping.get("kind") != "exec" or "container" in mapping or "selector" in mapping:
        return mapping
    service = leader.service
    if service is None:
        return {**mapping, "container": leader.name}
    return {
        **mapping,
        "selector": {COMPOSE_PROJECT: service[0], COMPOSE_SERVICE: service[1]},
        "pick": "one",
    }


def with_own_network(mapping: dict[str, Any], leader: ContainerFacts) -> dict[str, Any]:
    """A run label job that names no network joins its container's (not ours)."""
    if mapping.get("kind", "run") != "run" or "network" in mapping:
        return mapping
    own = sorted(set(leader.networks) - {"host"})
    return {**mapping, "network": own[0] if own else "none"}


@dataclass(frozen=True)
class LabelPolicy:
    trusted: bool = False
    siblings: frozenset[str] = field(default_factory=frozenset)


def _own_target(mapping: Mapping[str, Any], members: Sequence[ContainerFacts]) -> str | None:
    """Why the exec target is not the job's own container (None: it is)."""
    if mapping.get("kind") != "exec":
        return None
    leader = members[0]
    if "container" in mapping:
        target = str(mapping["container"])
        own = {m.name for m in members} | {m.id for m in members}
        if target in own or any(len(target) >= 12 and m.id.startswith(target) for m in members):
            return None
        return "container"
    if "selector" in mapping:
        service = leader.service
        expected = {COMPOSE_PROJECT: service[0], COMPOSE_SERVICE: service[1]} if service else {}
        selector = mapping["selector"]
        return None if expected and selector == expected else "selector"
    return None


def label_refusal(
    spec: JobSpec,
    mapping: Mapping[str, Any],
    members: Sequence[ContainerFacts],
    policy: LabelPolicy,
) -> tuple[str, str] | None:
    """(key, why) of the first thing the label policy refuses; None when the job may load.
    Trusted labels are held to the job files' policy instead (checked by the caller)."""
    if policy.trusted:
        return None
    for grant in ("privileged", "host_network", "host_pid", "docker_socket"):
        if getattr(spec, grant):
            return grant, "a grant"
    leader = members[0]
    mounted = {volume for member in members for volume in member.volumes}
    for volume in spec.volumes:
        if volume.source.startswith(("/", ".", "~")):
            return "volumes", f"a bind mount of {volume.source}"
        if volume.source not in mounted:
            return "volumes", f"volume {volume.source!r} that its container does not mount"
    networks = {n for member in members for n in member.networks} - {"host"}
    if spec.network is not None and spec.network not in networks | {"none"}:
        return "network", f"network {spec.network!r} beyond its container's"
    if spec.secrets:
        return "secrets", "a secret"
    if spec.env_file is not None:
        return "env_file", "a file of the scheduler's"
    if any(notify.secret for notify in spec.notify):
        return "notify", "a secret"
    if any(port.host_port is not None for port in spec.ports):
        return "ports", "a pinned host port"
    for key in ("on_success", "on_failure"):
        others = [name for name in getattr(spec, key) if name not in policy.siblings]
        if others:
            return key, f"a chain to {others[0]!r}, not a job of its container"
    wrong = _own_target(mapping, (leader, *members))
    if wrong is not None:
        return wrong, "an exec into another container"
    return None

"""Which networks a job may join (`network:`). Pure.

A network is a way in: a job on the scheduler's own network reaches the scheduler and
whatever else is on it (its database, the engine's socket proxy, which is root on the
host). So a job joins:

- with ORCHESTRATOR_ALLOWED_NETWORKS set: only the networks it lists, `bridge` and `none`;
- without it: any network but those the scheduler's own container is attached to.

`network: host` is the host_network grant (policies/safety.py), not this module's.

The engine takes a network's name, its id or a prefix of its id, so what a job file
names is not what it joins until the engine says: `check_network_named` decides what
the file and the settings alone show (validate, apply), `check_network_joined` decides
on the network the engine resolved the name to, compared by id and name (apply where
the engine answers, and every launch).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from orchestrator.errors import InvalidInputError, UnsafeJobError, quote
from orchestrator.hostpaths import NetworkRef
from orchestrator.settings import ALLOW_PRIVILEGED_JOBS_ENV, ALLOWED_NETWORKS_ENV, split_list

if TYPE_CHECKING:  # (every command checks its settings: no YAML parser for that)
    from orchestrator.spec import JobSpec

# Jobs that name no network are on `bridge` anyway; `none` has no network at all.
ALWAYS_ALLOWED = ("bridge", "none")
HOST = "host"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # the engine's (and the spec's) rule


def parse_allowed_networks(value: str | None) -> tuple[str, ...]:
    """The setting's names; a name the engine could not have, or `host`, is refused."""
    names = split_list(value)
    for name in names:
        if name == HOST:
            raise InvalidInputError(
                f"{ALLOWED_NETWORKS_ENV}: host is not a network to list: a job gets the "
                f"host's network with host_network: true, a grant of {ALLOW_PRIVILEGED_JOBS_ENV}"
            )
        if not _NAME.fullmatch(name):
            raise InvalidInputError(f"{ALLOWED_NETWORKS_ENV}: {quote(name)} is not a network name")
    return names


def joins_network(spec: JobSpec) -> bool:
    """Whether the job names a network this module decides on."""
    return spec.network is not None and spec.network != HOST


def _not_listed(spec: JobSpec, shown: str, allowed: Sequence[str]) -> UnsafeJobError:
    return UnsafeJobError(
        f"job {spec.name!r}: network {shown} is not in {ALLOWED_NETWORKS_ENV} "
        f"({','.join(allowed)}; bridge and none always are): add it there to allow it"
    )


def check_network_named(spec: JobSpec, allowed: Sequence[str]) -> None:
    """What the job file and the setting alone decide: with an allow-list, the job must
    name a listed network by that name (an id, a prefix or another case is refused)."""
    if not joins_network(spec) or not allowed or spec.network is None:
        return
    if spec.network in allowed or spec.network in ALWAYS_ALLOWED:
        return
    raise _not_listed(spec, repr(spec.network), allowed)


def check_networks_named(specs: Sequence[JobSpec], allowed: Sequence[str]) -> None:
    for spec in specs:
        check_network_named(spec, allowed)


def check_network_joined(
    spec: JobSpec, joined: NetworkRef, own: Sequence[NetworkRef], allowed: Sequence[str]
) -> None:
    """The network the engine resolved the job's `network:` to (`joined`), against the
    networks of the scheduler's own container (`own`) and the allow-list."""
    shown = (
        repr(spec.network)
        if spec.network == joined.name
        else (f"{spec.network!r} (the engine's {joined.name!r})")
    )
    if joined.name == HOST:
        raise UnsafeJobError(
            f"job {spec.name!r}: network {shown} is the host's network: ask for it with "
            f"host_network: true, a grant of {ALLOW_PRIVILEGED_JOBS_ENV}"
        )
    if joined.name in ALWAYS_ALLOWED:
        return
    if allowed:
        if joined.name in allowed:
            return
        raise _not_listed(spec, shown, allowed)
    if any(joined.id == mine.id or joined.name == mine.name for mine in own):
        raise UnsafeJobError(
            f"job {spec.name!r}: network {shown} is a network of the scheduler's own "
            "container: a job on it reaches the scheduler and what it talks to (its "
            "database, the engine's socket proxy); this service does not permit that "
            f"(list it in {ALLOWED_NETWORKS_ENV} to allow it)"
        )

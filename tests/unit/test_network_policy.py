"""The network policy as a pure function: a job that tries to join the scheduler's own
network, under any name the engine takes for it, is refused; the allow-list is the
operator's only way to let it."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import InvalidInputError
from orchestrator.hostpaths import NetworkRef
from orchestrator.policies.networks import (
    check_network_joined,
    check_network_named,
    parse_allowed_networks,
)
from orchestrator.policies.safety import UnsafeJobError
from orchestrator.spec import JobSpec, parse_job

INTERNAL = NetworkRef("4f1c" + "a" * 60, "deploy_internal")
FRONT = NetworkRef("77e0" + "b" * 60, "deploy_default")
JOBS = NetworkRef("9d2e" + "c" * 60, "orchestrator-jobs")
OTHER = NetworkRef("13ab" + "d" * 60, "app_default")
HOST = NetworkRef("559a" + "e" * 60, "host")
BRIDGE = NetworkRef("c80f" + "f" * 60, "bridge")
OWN = (INTERNAL, FRONT)


def job(**fields: Any) -> JobSpec:
    return parse_job({"name": "spy", "schedule": "@daily", "image": "busybox", **fields})


@pytest.mark.parametrize(
    "named",
    [INTERNAL.name, INTERNAL.id, INTERNAL.id[:12], INTERNAL.id[:4], FRONT.name],
)
def test_the_schedulers_own_network_is_refused_under_every_name(named: str) -> None:
    # The engine resolved `named` to one of our networks: its name, id or id prefix.
    joined = INTERNAL if named != FRONT.name else FRONT
    with pytest.raises(UnsafeJobError) as refused:
        check_network_joined(job(network=named), joined, OWN, ())
    line = str(refused.value)
    assert line.startswith(f"job 'spy': network {named!r}")
    assert "a network of the scheduler's own container" in line
    assert line.endswith("(list it in ORCHESTRATOR_ALLOWED_NETWORKS to allow it)")
    assert "\n" not in line


def test_our_network_is_known_by_its_id_even_when_the_engine_renamed_it() -> None:
    renamed = NetworkRef(INTERNAL.id, "renamed")
    with pytest.raises(UnsafeJobError):
        check_network_joined(job(network="renamed"), renamed, OWN, ())


def test_other_networks_bridge_and_none_are_joined_without_a_setting() -> None:
    for joined in (OTHER, BRIDGE, NetworkRef("0" * 64, "none")):
        check_network_joined(job(network=joined.name), joined, OWN, ())


def test_the_hosts_network_by_id_is_not_a_way_around_the_host_network_grant() -> None:
    for named in (HOST.id, HOST.id[:8]):
        with pytest.raises(UnsafeJobError) as refused:
            check_network_joined(job(network=named), HOST, OWN, ("orchestrator-jobs",))
        assert "is the host's network: ask for it with host_network: true" in str(refused.value)
        assert "ORCHESTRATOR_ALLOW_PRIVILEGED_JOBS" in str(refused.value)


def test_listing_our_network_is_the_operators_way_to_allow_it() -> None:
    check_network_joined(job(network=INTERNAL.name), INTERNAL, OWN, (INTERNAL.name,))


def test_with_an_allow_list_only_its_networks_bridge_and_none_are_joined() -> None:
    allowed = (JOBS.name,)
    check_network_joined(job(network=JOBS.name), JOBS, OWN, allowed)
    check_network_joined(job(network=JOBS.id[:12]), JOBS, OWN, allowed)  # the same network
    check_network_joined(job(network="bridge"), BRIDGE, OWN, allowed)
    with pytest.raises(UnsafeJobError) as refused:
        check_network_joined(job(network=OTHER.id[:6]), OTHER, OWN, allowed)
    assert str(refused.value) == (
        f"job 'spy': network {OTHER.id[:6]!r} (the engine's 'app_default') is not in "
        "ORCHESTRATOR_ALLOWED_NETWORKS (orchestrator-jobs; bridge and none always are): "
        "add it there to allow it"
    )


@pytest.mark.parametrize(
    "named", ["app_default", "Orchestrator-Jobs", "ORCHESTRATOR-JOBS", JOBS.id[:12], "internal"]
)
def test_the_file_alone_must_name_a_listed_network_by_its_name(named: str) -> None:
    with pytest.raises(UnsafeJobError) as refused:
        check_network_named(job(network=named), ("orchestrator-jobs",))
    assert f"network {named!r} is not in ORCHESTRATOR_ALLOWED_NETWORKS" in str(refused.value)


def test_the_file_alone_lets_through_what_only_the_engine_can_decide() -> None:
    check_network_named(job(network="orchestrator-jobs"), ("orchestrator-jobs",))
    for named in ("bridge", "none"):
        check_network_named(job(network=named), ("orchestrator-jobs",))
    check_network_named(job(network="deploy_internal"), ())  # no list: the engine decides
    check_network_named(job(network="host"), ("orchestrator-jobs",))  # the grant's question
    check_network_named(job(), ("orchestrator-jobs",))


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("host", "host is not a network to list"),
        ("jobs, container:db", "'container:db' is not a network name"),
        ("my net", "'my net' is not a network name"),
    ],
)
def test_the_setting_refuses_what_is_no_network(value: str, error: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_allowed_networks(value)
    assert str(refused.value).startswith("ORCHESTRATOR_ALLOWED_NETWORKS: ")
    assert error in str(refused.value)


def test_the_setting_is_a_comma_separated_list() -> None:
    assert parse_allowed_networks(" a, b.c ,, d_e ") == ("a", "b.c", "d_e")
    assert parse_allowed_networks(None) == parse_allowed_networks("") == ()

"""The host policy as a pure function: which mounts and keys reach the host, and the
two keys that let them through."""

from __future__ import annotations

import dataclasses
import posixpath
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.engine import ContainerSpec
from orchestrator.errors import InvalidSpecError
from orchestrator.hostpaths import ON_HOST, MountPlan, ScannedMount, SelfContainer
from orchestrator.policies.safety import (
    HostPolicy,
    UnsafeJobError,
    check_launch,
    reaches_socket,
    requests_of,
    resolve_requested_path,
)
from orchestrator.spec import FIELDS, JobSpec, parse_job

CLOSED = HostPolicy()
OPEN = HostPolicy(allow_privileged_jobs=True)


def job(**fields: Any) -> JobSpec:
    return parse_job({"name": "j", "schedule": "@daily", "image": "busybox", **fields})


def binds(*sources: str) -> list[MountPlan]:
    return [MountPlan("bind", source, f"/m{index}") for index, source in enumerate(sources)]


@pytest.mark.parametrize(
    "source",
    [
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/var/run",
        "/run",
        "/var",
        "/var/run/",
        "/run/containerd",
        "/srv/elsewhere/docker.sock",
        "/home/u/.local/podman.sock",
    ],
)
def test_a_bind_that_holds_an_engine_socket_is_the_docker_socket_grant(source: str) -> None:
    spec = job()
    with pytest.raises(UnsafeJobError, match=r"docker_socket.*reaches the engine's socket"):
        check_launch(spec, binds(source), CLOSED)
    check_launch(spec, binds(source), OPEN)  # both keys: allowed


@pytest.mark.parametrize("source", ["/srv/data", "/var/lib/app", "/running", "/var/runner"])
def test_ordinary_binds_need_no_grant(source: str) -> None:
    check_launch(job(), binds(source), CLOSED)


def test_the_engine_socket_where_docker_host_puts_it_counts_too() -> None:
    rootless = HostPolicy(engine_sockets=("/run/user/1000/docker-engine.socket",))
    with pytest.raises(UnsafeJobError, match="docker_socket"):
        check_launch(job(), binds("/run/user/1000"), rootless)
    # an unknown socket: nothing there, but /run is the host's (see test_host_paths.py)
    check_launch(job(), binds("/run/user/1000"), HostPolicy(allowed_host_paths=("/run/user",)))


def test_the_hosts_root_is_refused_even_with_both_keys() -> None:
    with pytest.raises(UnsafeJobError, match="host path is / "):
        check_launch(job(), binds("/"), OPEN)


def test_an_allow_list_refuses_every_bind_outside_it() -> None:
    policy = HostPolicy(allowed_host_paths=("/srv/jobs", "/data"))
    check_launch(job(), binds("/srv/jobs", "/srv/jobs/a/b", "/data/x"), policy)
    for outside in ("/srv/jobsx", "/srv", "/etc", "/data2"):
        with pytest.raises(UnsafeJobError, match="outside ORCHESTRATOR_ALLOWED_HOST_PATHS"):
            check_launch(job(), binds(outside), policy)
    # named volumes are not host paths
    check_launch(job(), [MountPlan("volume", "cache", "/c")], policy)


@pytest.mark.parametrize(
    ("fields", "grant"),
    [
        ({"privileged": True}, "privileged"),
        ({"host_network": True}, "host_network"),
        ({"network": "host"}, "host_network"),
        ({"host_pid": True}, "host_pid"),
        ({"docker_socket": True}, "docker_socket"),
    ],
)
def test_every_route_to_a_grant_needs_the_service(fields: dict[str, Any], grant: str) -> None:
    spec = job(**fields)
    assert requests_of(spec, [], CLOSED) == [grant]
    with pytest.raises(UnsafeJobError, match=f"asks for {grant}.*ORCHESTRATOR_ALLOW_PRIVILEGED"):
        check_launch(spec, [], CLOSED)
    check_launch(spec, [], OPEN)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"network": "container:db"}, "another container's namespaces is never allowed"),
        ({"network": "container:" + "a" * 64}, "never allowed"),
        ({"volumes": ["/:/host"]}, "binding / .* is never allowed"),
        ({"volumes": ["//:/host:ro"]}, "binding / .* is never allowed"),
        ({"network": "host", "host_network": True}, "cannot be combined"),
        ({"network": "a b"}, "is not a network name"),
    ],
)
def test_what_a_job_file_shows_is_refused_at_validate(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        job(**fields)


# Every ContainerSpec field, by what it can do to the host. A new field that reaches the
# engine must be placed here, and a dangerous one must be gated: this test fails until so.
SAFE_FIELDS = {
    "name",
    "image",
    "labels",
    "command",
    "entrypoint",
    "environment",
    "ports",  # leased or pinned host ports, from the pool's ledger
    "working_dir",
    "user",
    "memory",
    "cpus",
    "pids_limit",  # a limit: fewer processes, never more
    "merge_output",  # the same program, through the image's own /bin/sh
    "constraints",  # Swarm: which nodes may take the task, never what it may do there
    "preferences",
    "cpus_reserved",  # Swarm: reservations, a share asked of the node
    "memory_reserved",
    "port_mode",  # Swarm: the same leased port, on the mesh or on the task's node
}
GATED_FIELDS = {
    "mounts": "check_launch: sockets, /, allow-list; symlinks resolved",
    "network": "network: host is host_network; container:* refused",
    "privileged": "privileged",
    "host_network": "host_network",
    "host_pid": "host_pid",
    # Swarm: binds pass only with it, and still through check_launch on this node.
    "bind_on_every_node": "the Swarm backend refuses binds without it",
}


def test_every_field_that_reaches_the_engine_is_classified() -> None:
    names = {f.name for f in dataclasses.fields(ContainerSpec)}
    assert names == SAFE_FIELDS | set(GATED_FIELDS), names ^ (SAFE_FIELDS | set(GATED_FIELDS))


def test_job_keys_that_would_widen_namespaces_do_not_exist() -> None:
    for key in ("pid", "ipc", "uts", "userns", "devices", "cap_add", "security_opt", "cgroup"):
        assert key not in FIELDS
        with pytest.raises(InvalidSpecError, match="unknown field"):
            job(**{key: "host"})


# --- symlinks ---------------------------------------------------------------------------

DATA = ScannedMount("bind", "/data", "/srv/scheduler-data")
IN_CONTAINER = SelfContainer("c" * 64, "test", (DATA,))


def links(table: dict[str, str]) -> Any:
    def realpath(path: str) -> str:
        for link, target in table.items():
            if path == link or path.startswith(link + "/"):
                return posixpath.normpath(target + path[len(link) :])
        return path

    return realpath


def test_on_the_host_a_link_is_checked_where_it_leads() -> None:
    resolved = resolve_requested_path("/tmp/x", ON_HOST, links({"/tmp/x": "/var/run"}))
    assert resolved == "/var/run"
    with pytest.raises(UnsafeJobError, match="docker_socket"):
        check_launch(job(), binds(resolved), CLOSED)


def test_in_a_container_a_link_out_of_its_mount_is_refused() -> None:
    with pytest.raises(UnsafeJobError, match="leads to /, out of the scheduler's mount"):
        resolve_requested_path("/data/root", IN_CONTAINER, links({"/data/root": "/"}))


def test_in_a_container_a_link_within_its_mount_is_followed() -> None:
    realpath = links({"/data/current": "/data/releases/7"})
    assert resolve_requested_path("/data/current/x", IN_CONTAINER, realpath) == (
        "/data/releases/7/x"
    )


# --- property: no volume list gets the socket or / past a closed policy -----------------

segments = st.sampled_from(["var", "run", "docker.sock", "srv", "data", "", ".", "..", "x"])
paths = st.lists(segments, min_size=0, max_size=5).map(lambda parts: "/" + "/".join(parts))


@given(st.lists(paths, min_size=1, max_size=4))
def test_no_generated_volume_list_reaches_the_socket_or_root(sources: list[str]) -> None:
    """Whatever the spelling (trailing slashes, dots, dot-dots), a closed policy lets
    nothing through that holds the socket or is /."""
    plans = binds(*sources)
    try:
        check_launch(job(), plans, CLOSED)
    except UnsafeJobError:
        return
    for source in sources:
        real = posixpath.normpath(source)
        assert real != "/"
        for socket in ("/var/run/docker.sock", "/run/docker.sock"):
            assert not (socket == real or socket.startswith(real.rstrip("/") + "/")), source


@given(st.lists(paths, min_size=1, max_size=4))
def test_no_generated_job_file_binds_root(sources: list[str]) -> None:
    volumes = [f"{source}:/m{index}" for index, source in enumerate(sources)]
    try:
        spec = job(volumes=volumes)
    except InvalidSpecError:
        return
    assert all(volume.source != "/" for volume in spec.volumes)
    assert reaches_socket("/", CLOSED.sockets)

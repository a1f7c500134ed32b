"""Which host paths and named volumes a job may mount, as pure decisions: the host's
system parts need an explicit grant, whatever the spelling of the path."""

from __future__ import annotations

import posixpath
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.errors import InvalidSpecError
from orchestrator.hostpaths import MountPlan, VolumeFacts
from orchestrator.policies.host_paths import ROOT_EQUIVALENT, host_path_refusal
from orchestrator.policies.safety import HostPolicy, UnsafeJobError, check_job_paths, check_launch
from orchestrator.spec import LoadedJob, parse_job

CLOSED = HostPolicy()


def job(**fields: Any) -> Any:
    return parse_job({"name": "j", "schedule": "@daily", "image": "busybox", **fields})


def bind(source: str) -> list[MountPlan]:
    return [MountPlan("bind", source, "/h")]


@pytest.mark.parametrize(
    "source",
    [
        "/etc",
        "/etc/cron.d",
        "/proc",
        "/proc/sys/kernel",
        "/sys",
        "/dev",
        "/boot",
        "/root",
        "/run/systemd",
        "/var/lib/docker",
        "/var/lib/docker/containers",
        "/var/lib/containerd",
        "/usr",
        "/usr/local/bin",
        "/lib",
        "/lib64",
        "/lib/modules",
        "/libx32",
        "/bin",
        "/sbin",
        "/var/lib",  # holds /var/lib/docker
        "/var/spool/cron/crontabs",  # a file written there is root's crontab
        "/var/spool",
        "/home/alice/.ssh",  # alice is in the sudo group: her authorized_keys
        "/home",
        "/var/lib/lxd",  # its unix.socket is root
        "/var/lib/incus/unix.socket",
        "/var/snap/lxd/common/lxd",
        "/var/lib/rancher/k3s/server/cred",
        "/var/lib/libvirt",
    ],
)
def test_a_system_part_is_refused_without_a_grant(source: str) -> None:
    with pytest.raises(UnsafeJobError) as refused:
        check_launch(job(), bind(source), CLOSED)
    (line,) = str(refused.value).splitlines()
    assert line.startswith(f"job 'j': volumes: /h: host path {source} ")
    assert "ORCHESTRATOR_ALLOWED_HOST_PATHS" in line


def test_only_an_entry_at_or_below_the_part_grants_it() -> None:
    for broad in (("/",), ("/var",), ("/var/lib",), ("/etc/..",)):
        with pytest.raises(UnsafeJobError, match="a part of the host's system"):
            check_launch(
                job(), bind("/var/lib/docker/volumes"), HostPolicy(allowed_host_paths=broad)
            )
    exact = HostPolicy(allowed_host_paths=("/var/lib/docker/volumes",))
    check_launch(job(), bind("/var/lib/docker/volumes/x"), exact)
    check_launch(job(), bind("/etc/myapp"), HostPolicy(allowed_host_paths=("/etc/myapp",)))
    check_launch(job(), bind("/etc/myapp"), HostPolicy(allowed_host_paths=("/etc",)))
    cron = HostPolicy(allowed_host_paths=("/var/spool/cron",))
    check_launch(job(), bind("/var/spool/cron/crontabs"), cron)
    with pytest.raises(UnsafeJobError, match="outside ORCHESTRATOR_ALLOWED_HOST_PATHS"):
        check_launch(job(), bind("/var/spool/mail"), cron)
    with pytest.raises(UnsafeJobError, match="lies in /var/spool, a part"):
        check_launch(job(), bind("/var/spool/cron"), HostPolicy(allowed_host_paths=("/var",)))
    with pytest.raises(UnsafeJobError, match="outside ORCHESTRATOR_ALLOWED_HOST_PATHS"):
        check_launch(job(), bind("/etc/other"), HostPolicy(allowed_host_paths=("/etc/myapp",)))


def test_a_directory_holding_a_part_needs_each_part_named() -> None:
    line = host_path_refusal("/var/lib", ())
    assert line and "holds /var/lib/docker" in line and "name /var/lib, /var/lib/docker" in line
    named = ("/var/lib", "/var/lib/docker", "/var/lib/containerd")
    assert host_path_refusal("/var/lib", named) is not None  # /var/lib/containers too
    everything = ("/var/lib", *(p for p in ROOT_EQUIVALENT if p.startswith("/var/lib")))
    assert host_path_refusal("/var/lib", everything) is None


@pytest.mark.parametrize(
    "source", ["/srv/data", "/var/lib/app", "/tmp/x", "/li", "/homes", "/var/spooler", "/var/snapx"]
)
def test_ordinary_directories_need_no_grant(source: str) -> None:
    check_launch(job(), bind(source), CLOSED)


# --- property: no spelling of a path gets a system part past a policy that grants none --

PARTS_SEGMENTS = ("etc", "var", "lib", "docker", "run", "proc", "usr", "home", "spool", "snap")
OTHER_SEGMENTS = ("srv", "data", "lxd", "x", "", ".", "..")
segments = st.sampled_from(PARTS_SEGMENTS + OTHER_SEGMENTS)
paths = st.lists(segments, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts))
allow_lists = st.lists(paths, max_size=3)


@given(paths, allow_lists)
def test_no_spelling_reaches_a_part_no_entry_names(source: str, allowed: list[str]) -> None:
    real = posixpath.normpath("/" + source.lstrip("/"))
    if real == "/":
        return
    normal = [posixpath.normpath("/" + entry.lstrip("/")) for entry in allowed]
    refusal = host_path_refusal(source, allowed)
    for part in ROOT_EQUIVALENT:
        inside = real == part or real.startswith(part + "/")
        holds = part.startswith(real + "/")
        granted_inside = any(
            (e == part or e.startswith(part + "/")) and (real == e or real.startswith(e + "/"))
            for e in normal
        )
        if (inside and not granted_inside) or (holds and part not in normal):
            assert refusal is not None, (source, allowed, part)
    if real.split("/")[1].startswith("lib"):
        assert (refusal is None) == any(
            e.split("/")[1] == real.split("/")[1] and (real == e or real.startswith(e + "/"))
            for e in normal
        ), (source, allowed)


# --- named volumes ----------------------------------------------------------------------

VOLUME = [MountPlan("volume", "data", "/d")]


def test_a_bind_driver_volume_is_held_to_the_host_path_rules() -> None:
    to_etc = {"data": VolumeFacts("data", bind_device="/etc")}
    with pytest.raises(UnsafeJobError, match="volumes: /d: host path /etc is a part"):
        check_launch(job(), VOLUME, CLOSED, to_etc)
    with pytest.raises(UnsafeJobError, match="docker_socket"):
        check_launch(job(), VOLUME, CLOSED, {"data": VolumeFacts("data", bind_device="/run")})
    check_launch(job(), VOLUME, CLOSED, {"data": VolumeFacts("data", bind_device="/srv/x")})
    check_launch(job(), VOLUME, CLOSED, {"data": None})  # the engine makes it, empty


def test_the_schedulers_and_its_stacks_volumes_need_a_grant() -> None:
    policy = HostPolicy(guarded_volumes=("data",), project="cron")
    with pytest.raises(UnsafeJobError, match=r"scheduler's own: .* ORCHESTRATOR_ALLOWED_VOLUMES"):
        check_launch(job(), VOLUME, policy, {"data": VolumeFacts("data")})
    database = [MountPlan("volume", "cron_pgdata", "/d")]
    stack = {"cron_pgdata": VolumeFacts("cron_pgdata", project="cron")}
    with pytest.raises(UnsafeJobError, match=r"stack \(cron\).*name cron_pgdata in"):
        check_launch(job(), database, policy, stack)
    granted = HostPolicy(guarded_volumes=("data",), project="cron", allowed_volumes=("data",))
    check_launch(job(), VOLUME, granted, {"data": VolumeFacts("data")})
    # a job's path inside the scheduler's volume (/data/reports): that sub-folder only
    folder = [MountPlan("volume", "data", "/d", subpath="reports")]
    check_launch(job(), folder, policy, {"data": VolumeFacts("data")})


def test_an_allowed_volumes_list_narrows_the_rest() -> None:
    policy = HostPolicy(allowed_volumes=("cache",))
    with pytest.raises(UnsafeJobError, match=r"not in ORCHESTRATOR_ALLOWED_VOLUMES \(cache\)"):
        check_launch(job(), VOLUME, policy, {"data": None})
    check_launch(job(), [MountPlan("volume", "cache", "/c")], policy, {"cache": None})


# --- validate and apply: the job file as written ----------------------------------------


def test_a_job_file_naming_a_system_part_is_refused_at_validate() -> None:
    loaded = [LoadedJob(job(volumes=["/etc:/h", "/srv:/s"]), "jobs/a.yaml")]
    with pytest.raises(InvalidSpecError) as refused:
        check_job_paths(loaded, CLOSED)
    assert str(refused.value) == (
        "jobs/a.yaml: job 'j': volumes: /etc:/h: host path /etc is a part of the host's "
        "system that gives a job control of it: to allow it, name /etc in "
        "ORCHESTRATOR_ALLOWED_HOST_PATHS, which then confines every job's host paths to "
        "that list"
    )
    check_job_paths(loaded, HostPolicy(allowed_host_paths=("/etc",)))
    # the socket's directory is the docker_socket grant, decided at launch
    check_job_paths([LoadedJob(job(volumes=["/var/run:/h"]), "a")], CLOSED)
    with pytest.raises(InvalidSpecError, match="volume data is not in"):
        check_job_paths(
            [LoadedJob(job(volumes=["data:/d"]), "a")], HostPolicy(allowed_volumes=("c",))
        )

"""Host path translation as a pure function of a mount table, and self-detection."""

from __future__ import annotations

import pytest

from orchestrator.engine.selfcontainer import SelfDetectionError, detect_container_id
from orchestrator.hostpaths import (
    ON_HOST,
    HostPathError,
    MountPlan,
    ScannedMount,
    SelfContainer,
    translate_volume,
    translate_volumes,
)
from orchestrator.spec import VolumeSpec

ID = "a" * 64


def inside(*mounts: ScannedMount) -> SelfContainer:
    return SelfContainer(container_id=ID, how="test", mounts=mounts)


def bind(destination: str, source: str, read_only: bool = False) -> ScannedMount:
    return ScannedMount("bind", destination, source, read_only)


DATA = bind("/data", "/srv/scheduler-data")


def one(volume: str, where: SelfContainer, api: tuple[int, int] = (1, 41)) -> list[MountPlan]:
    source, target, *mode = volume.split(":")
    return translate_volume(VolumeSpec(source, target, mode == ["ro"]), where, api)


def test_on_the_host_paths_pass_unchanged() -> None:
    assert one("/srv/x:/in", ON_HOST) == [MountPlan("bind", "/srv/x", "/in")]
    assert one("/srv/x:/in:ro", ON_HOST) == [MountPlan("bind", "/srv/x", "/in", True)]


def test_named_volumes_pass_by_name_wherever_we_run() -> None:
    assert one("cache:/cache", ON_HOST) == [MountPlan("volume", "cache", "/cache")]
    assert one("cache:/cache:ro", inside()) == [MountPlan("volume", "cache", "/cache", True)]


@pytest.mark.parametrize(
    ("requested", "host"),
    [
        ("/data", "/srv/scheduler-data"),
        ("/data/", "/srv/scheduler-data"),
        ("/data/reports", "/srv/scheduler-data/reports"),
        ("/data/a/b/c", "/srv/scheduler-data/a/b/c"),
    ],
)
def test_bind_paths_map_to_the_host_path_behind_them(requested: str, host: str) -> None:
    assert one(f"{requested}:/out", inside(DATA)) == [MountPlan("bind", host, "/out")]


def test_the_boundary_is_a_slash_not_a_prefix() -> None:
    with pytest.raises(HostPathError, match="/database is in the scheduler container's own"):
        one("/database:/out", inside(DATA))
    with pytest.raises(
        HostPathError, match="bind-mount a host directory into the scheduler at /dat"
    ):
        one("/dat:/out", inside(DATA))


def test_the_longest_covering_mount_wins() -> None:
    where = inside(DATA, bind("/data/reports", "/mnt/fast"), bind("/data/reports-old", "/mnt/old"))
    assert one("/data/reports/2026:/out", where)[0] == MountPlan("bind", "/mnt/fast/2026", "/out")
    assert one("/data/reports-old/x:/out", where)[0] == MountPlan("bind", "/mnt/old/x", "/out")
    assert one("/data/other:/out", where)[0] == MountPlan(
        "bind", "/srv/scheduler-data/other", "/out"
    )


def test_a_root_bind_covers_everything() -> None:
    where = inside(bind("/", "/hostroot"))
    assert one("/etc/app:/cfg", where) == [MountPlan("bind", "/hostroot/etc/app", "/cfg")]


def test_a_read_only_parent_makes_the_job_mount_read_only() -> None:
    where = inside(bind("/config", "/etc/scheduler", read_only=True))
    assert one("/config/app:/cfg", where) == [MountPlan("bind", "/etc/scheduler/app", "/cfg", True)]


def test_mounts_nested_below_the_requested_path_are_recreated_in_the_job() -> None:
    where = inside(
        DATA,
        bind("/data/secrets", "/run/secrets-host", read_only=True),
        ScannedMount("volume", "/data/cache", "cachevol"),
        bind("/data/secrets/extra", "/opt/extra"),
        bind("/elsewhere", "/nowhere"),
    )
    assert one("/data:/work", where) == [
        MountPlan("bind", "/srv/scheduler-data", "/work"),
        MountPlan("volume", "cachevol", "/work/cache"),
        MountPlan("bind", "/run/secrets-host", "/work/secrets", True),
        MountPlan("bind", "/opt/extra", "/work/secrets/extra"),
    ]


def test_a_read_only_job_mount_makes_nested_mounts_read_only_too() -> None:
    where = inside(DATA, bind("/data/in", "/mnt/in"))
    assert one("/data:/work:ro", where) == [
        MountPlan("bind", "/srv/scheduler-data", "/work", True),
        MountPlan("bind", "/mnt/in", "/work/in", True),
    ]


def test_a_named_volume_of_the_scheduler_is_passed_by_name() -> None:
    where = inside(ScannedMount("volume", "/state", "scheduler-state"))
    assert one("/state:/s", where) == [MountPlan("volume", "scheduler-state", "/s")]


def test_a_folder_inside_a_named_volume_needs_a_new_engine() -> None:
    where = inside(ScannedMount("volume", "/state", "scheduler-state"))
    with pytest.raises(
        HostPathError, match=r"needs engine API 1\.45 or newer, this engine speaks 1\.41"
    ):
        one("/state/reports:/r", where)
    assert one("/state/reports:/r", where, api=(1, 45)) == [
        MountPlan("volume", "scheduler-state", "/r", subpath="reports")
    ]


def test_tmpfs_is_refused_with_the_directory_to_mount() -> None:
    where = inside(DATA, ScannedMount("tmpfs", "/scratch"))
    with pytest.raises(
        HostPathError,
        match=r"on a tmpfs .* bind-mount a host directory into the scheduler at /scratch/x",
    ):
        one("/scratch/x:/x", where)
    nested_tmpfs = inside(DATA, ScannedMount("tmpfs", "/data/tmp"))
    with pytest.raises(HostPathError, match="/data/tmp is on a tmpfs"):
        one("/data:/work", nested_tmpfs)


def test_a_path_under_no_mount_says_which_directory_to_mount() -> None:
    with pytest.raises(HostPathError) as caught:
        one("/srv/reports:/out", inside(DATA))
    assert str(caught.value) == (
        "/srv/reports is in the scheduler container's own filesystem, which no sibling "
        "container can see: bind-mount a host directory into the scheduler at /srv/reports "
        "(or at a parent of it)"
    )
    assert caught.value.exit_code == 2


def test_translate_volumes_keeps_the_job_order() -> None:
    plans = translate_volumes(
        [VolumeSpec("/data/a", "/a"), VolumeSpec("cache", "/c"), VolumeSpec("/data/b", "/b", True)],
        inside(DATA),
    )
    assert [p.target for p in plans] == ["/a", "/c", "/b"]


MOUNTINFO = (
    "1203 1185 0:123 / / rw,relatime master:1 - overlay overlay rw\n"
    f"1220 1203 254:1 /var/lib/docker/containers/{ID}/resolv.conf /etc/resolv.conf rw - ext4 x\n"
    f"1221 1203 254:1 /var/lib/docker/containers/{ID}/hostname /etc/hostname rw - ext4 x\n"
)
CGROUP_V1 = f"12:pids:/docker/{'b' * 64}\n11:memory:/docker/{'b' * 64}\n"


def test_detection_order() -> None:
    assert detect_container_id(
        override="mine",
        in_container_marker=True,
        mountinfo=MOUNTINFO,
        cgroup=CGROUP_V1,
        hostname="x",
    ) == ("mine", "setting ORCHESTRATOR_CONTAINER_ID")
    assert detect_container_id(
        override=None,
        in_container_marker=True,
        mountinfo=MOUNTINFO,
        cgroup=CGROUP_V1,
        hostname=None,
    ) == (ID, "/proc/self/mountinfo")
    assert detect_container_id(
        override=None,
        in_container_marker=True,
        mountinfo="nothing",
        cgroup=CGROUP_V1,
        hostname=None,
    ) == ("b" * 64, "/proc/self/cgroup")
    assert detect_container_id(
        override=None,
        in_container_marker=True,
        mountinfo="",
        cgroup="0::/",
        hostname="0123456789ab",
    ) == ("0123456789ab", "$HOSTNAME")


def test_on_the_host_nothing_is_detected() -> None:
    found, how = detect_container_id(
        override=None,
        in_container_marker=False,
        mountinfo="",
        cgroup="0::/user.slice",
        hostname="my-laptop",
    )
    assert found is None and "not in a container" in how


def test_an_engine_inside_our_own_container_makes_us_its_host() -> None:
    found, how = detect_container_id(
        override=None,
        in_container_marker=True,
        mountinfo="",
        cgroup="9:pids:/",
        hostname="vm",
        engine_hostname="vm",
    )
    assert found is None and "the engine runs beside us" in how
    with pytest.raises(SelfDetectionError):
        detect_container_id(
            override=None,
            in_container_marker=True,
            mountinfo="",
            cgroup="9:pids:/",
            hostname="scheduler",
            engine_hostname="prod-host",
        )


def test_in_an_unrecognisable_container_the_error_names_the_setting() -> None:
    with pytest.raises(SelfDetectionError, match="set ORCHESTRATOR_CONTAINER_ID"):
        detect_container_id(
            override=None,
            in_container_marker=True,
            mountinfo="",
            cgroup="0::/",
            hostname="scheduler",
        )

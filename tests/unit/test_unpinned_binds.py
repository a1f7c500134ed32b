"""Bind sources the scheduler cannot pin: a job whose source a non-root user could swap
for a link is refused before anything is created, and one swapped while the engine
mounts it fails its run. The rule as pure decisions, then on real directories."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from orchestrator.errors import UnsafeJobError
from orchestrator.hostpaths import MountPlan, SelfContainer
from orchestrator.policies.unpinned_binds import PathStep, swap_refusal, unpinned_refusal
from orchestrator.runner.pinning import BindPinner

DIR, LINK = stat.S_IFDIR, stat.S_IFLNK
IN_A_CONTAINER = SelfContainer(container_id="c" * 64, how="a test")


def steps(*parts: tuple[str, int, int]) -> list[PathStep]:
    return [PathStep(path, uid, mode) for path, uid, mode in parts]


def test_a_source_below_a_users_directory_is_refused() -> None:
    # uid 1000 owns /data: it may rename /data/out and put a link to / there.
    why = swap_refusal(steps(("/data", 1000, DIR | 0o755), ("/data/out", 0, DIR | 0o755)))
    assert why == "directory /data belongs to uid 1000, not root"


@pytest.mark.parametrize(
    ("mode", "who"), [(0o777, "group and others"), (0o775, "group"), (0o757, "others")]
)
def test_a_source_below_a_directory_others_may_write_is_refused(mode: int, who: str) -> None:
    why = swap_refusal(steps(("/data", 0, DIR | mode), ("/data/out", 0, DIR | 0o755)))
    assert why == f"directory /data is writable by its {who}"


def test_a_sticky_directory_protects_only_roots_entries() -> None:
    sticky = ("/tmp", 0, DIR | stat.S_ISVTX | 0o777)
    assert swap_refusal(steps(sticky, ("/tmp/roots", 0, DIR | 0o755))) is None
    # a user's entry in /tmp is that user's to rename
    why = swap_refusal(steps(sticky, ("/tmp/users", 1000, DIR | 0o755)))
    assert why == "directory /tmp is writable by its group and others"
    # and a name nobody holds yet is anyone's to create as a link
    missing = [PathStep(*sticky), PathStep("/tmp/none", None, None)]
    assert swap_refusal(missing) == "directory /tmp is writable by its group and others"


def test_a_deep_writable_directory_is_found_and_named() -> None:
    path = steps(
        ("/data", 0, DIR | 0o755),
        ("/data/shared", 0, DIR | 0o777),
        ("/data/shared/ok", 0, DIR | 0o755),
    )
    refusal = unpinned_refusal("racer", "/h", "/data/shared/ok", path)
    assert refusal == (
        "job 'racer': volumes: /h: host path /data/shared/ok cannot be pinned here and "
        "directory /data/shared is writable by its group and others: a link swapped in "
        "there before the engine mounts it would reach the host; make the directories "
        "above it root's and not writable by others, or set "
        "ORCHESTRATOR_UNPINNED_BINDS=allow to accept that"
    )


def test_a_link_on_the_way_is_refused() -> None:
    why = swap_refusal(steps(("/data", 0, DIR | 0o755), ("/data/ok", 0, LINK | 0o777)))
    assert why == "/data/ok is a symbolic link"
    # on the way down, too (a link is root's and mode 777 whoever swapped it in)
    via = steps(("/data", 0, DIR | 0o755), ("/data/l", 0, LINK | 0o777), ("/data/l/x", 0, DIR))
    assert swap_refusal(via) == "/data/l is a symbolic link"


def test_root_only_parents_pass_whoever_owns_the_source() -> None:
    # The job's output directory may be anyone's: its owner cannot rename it.
    path = steps(("/data", 0, DIR | 0o755), ("/data/out", 1000, DIR | 0o777))
    assert swap_refusal(path) is None
    assert swap_refusal(steps(("/data", 0, DIR | 0o755))) is None  # the mount root itself


# --- on real directories, through the pinner as a launch uses it ---------------------


def plan(root: Path, source: Path) -> MountPlan:
    return MountPlan("bind", str(source), "/h", checked=True, seen_at=(str(root), str(source)))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "shared" / "ok").mkdir(parents=True)
    for path in (tmp_path, root, root / "shared", root / "shared" / "ok"):
        path.chmod(0o755)
    if os.geteuid() != 0:
        pytest.fail("these tests make root-owned trees: run them as root (CI does)")
    return root


def test_the_pinner_refuses_a_bind_below_a_world_writable_directory(tree: Path) -> None:
    (tree / "shared").chmod(0o777)  # any user may swap shared/ok for a link to /
    pinner = BindPinner(IN_A_CONTAINER, None)
    assert not pinner.enabled
    shared_ok = [plan(tree, tree / "shared" / "ok")]
    with pytest.raises(UnsafeJobError) as refused, pinner.pinned("racer", shared_ok):
        pytest.fail("the container would have been created")
    assert f"directory {tree}/shared is writable by its group and others" in str(refused.value)
    # accepted once the operator takes the risk
    allowing = BindPinner(IN_A_CONTAINER, None, allow_unpinned=True)
    with allowing.pinned("racer", [plan(tree, tree / "shared" / "ok")]) as given:
        assert given[0].source == str(tree / "shared" / "ok")


def test_a_source_swapped_while_the_engine_mounts_it_fails_the_run(tree: Path) -> None:
    ok = tree / "shared" / "ok"
    pinner = BindPinner(IN_A_CONTAINER, None)
    with pytest.raises(UnsafeJobError) as stopped, pinner.pinned("racer", [plan(tree, ok)]):
        # (root's doing, or a race the rule missed): the container got something else
        ok.rename(tree / "shared" / "ok.real")
        ok.symlink_to("/etc")
    assert str(stopped.value) == (
        f"job 'racer': volumes: /h: host path {ok} changed while the engine mounted it "
        f"({ok} is not what was checked): stopped"
    )
    ok.unlink()
    (tree / "shared" / "ok.real").rename(ok)
    with pinner.pinned("racer", [plan(tree, ok)]) as given:  # untouched: started
        assert given[0].source == str(ok)

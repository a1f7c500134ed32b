"""Bind sources that cannot be pinned: each walked, component by component, just before
the container's create (the writable-parent rule, orchestrator.policies.unpinned_binds),
and walked again once it started: a component that is not the one checked fails the run
(its container goes with it)."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import UnsafeJobError
from orchestrator.hostpaths import MountPlan
from orchestrator.policies.unpinned_binds import PathStep, changed_on_the_way, unpinned_refusal


@dataclass(frozen=True)
class Walked:
    """One checked bind: its plan and its components as lstat saw them."""

    plan: MountPlan
    steps: tuple[PathStep, ...]


def components(root: str, path: str) -> list[str]:
    """`root`, then each path from it down to `path` (`path` lies in `root`)."""
    rest = posixpath.relpath(path, root) if path != root else "."
    found = [root]
    for name in [] if rest == "." else rest.split("/"):
        found.append(posixpath.join(found[-1], name))
    return found


def walk(root: str, path: str) -> tuple[PathStep, ...]:
    steps = []
    for at in components(root, path):
        try:
            info = os.lstat(at)
        except OSError:
            steps.append(PathStep(at, None, None))
            break
        steps.append(PathStep(at, info.st_uid, info.st_mode, (info.st_dev, info.st_ino)))
    return tuple(steps)


def check_unpinned(job: str, plans: Sequence[MountPlan]) -> list[Walked]:
    """Each checked bind of `plans` walked and held to the rule; UnsafeJobError names
    the first one a non-root user could swap."""
    walked = []
    for plan in plans:
        if not (plan.checked and plan.type == "bind" and plan.seen_at):
            continue
        root, path = plan.seen_at
        steps = walk(root, path)
        refusal = unpinned_refusal(job, plan.target, path, steps)
        if refusal is not None:
            raise UnsafeJobError(refusal)
        walked.append(Walked(plan, steps))
    return walked


def check_unchanged(job: str, walked: Sequence[Walked]) -> None:
    """After the start: each bind's components are still the ones checked."""
    for one in walked:
        root, path = one.plan.seen_at or ("/", one.plan.source)
        changed = changed_on_the_way(one.steps, walk(root, path))
        if changed is not None:
            raise UnsafeJobError(
                f"job {job!r}: volumes: {one.plan.target}: host path {path} changed while "
                f"the engine mounted it ({changed} is not what was checked): stopped"
            )

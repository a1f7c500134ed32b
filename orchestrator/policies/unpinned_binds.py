"""Which unpinned bind sources a job may have: the writable-parent rule, pure.

Where the scheduler cannot pin a bind source (orchestrator.runner.pinning: in a
container, as non-root), the engine resolves the path itself when the container starts.
Whoever may rename an entry on that path in between can swap it for a symbolic link (to
`/`, to `/etc`). Renaming an entry needs write permission on the directory that holds
it, and the owner of a directory may grant itself that. So an unpinned source is
accepted only when every directory that holds a component of it, from the mount root
down to the source's parent, is owned by root and writable by nobody else (or sticky,
as /tmp is, with a root-owned entry: only its owner and root may move that). The
source's own owner cannot swap it: a job's own output directory may belong to anyone.

`ORCHESTRATOR_UNPINNED_BINDS=allow` accepts the risk.
"""

from __future__ import annotations

import stat
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from orchestrator.settings import UNPINNED_BINDS_ENV

ROOT_UID = 0


@dataclass(frozen=True)
class PathStep:
    """One component of a bind source as lstat saw it; None: it does not exist."""

    path: str
    uid: int | None
    mode: int | None
    identity: tuple[int, int] | None = None  # (st_dev, st_ino)


def swap_refusal(steps: Sequence[PathStep]) -> str | None:
    """Why a non-root user could swap the source whose components (mount root first,
    the source last) are `steps`, or None when only root could."""
    for holder, entry in pairwise(steps):
        if holder.mode is None or holder.uid is None:
            return f"{holder.path} does not exist"
        if stat.S_ISLNK(holder.mode):
            return f"{holder.path} is a symbolic link"
        if holder.uid != ROOT_UID:
            return f"directory {holder.path} belongs to uid {holder.uid}, not root"
        sticky = bool(holder.mode & stat.S_ISVTX) and entry.uid == ROOT_UID
        writers = [who for who, bit in (("group", 0o020), ("others", 0o002)) if holder.mode & bit]
        if writers and not sticky:
            return f"directory {holder.path} is writable by its {' and '.join(writers)}"
    last = steps[-1] if steps else None
    if last is not None and last.mode is not None and stat.S_ISLNK(last.mode):
        return f"{last.path} is a symbolic link"
    return None


def unpinned_refusal(job: str, target: str, source: str, steps: Sequence[PathStep]) -> str | None:
    """The refusal line of a job's unpinned bind of `source` (as the scheduler sees it)
    at `target`, or None when it may be mounted."""
    why = swap_refusal(steps)
    if why is None:
        return None
    return (
        f"job {job!r}: volumes: {target}: host path {source} cannot be pinned here and "
        f"{why}: a link swapped in there before the engine mounts it would reach the "
        f"host; make the directories above it root's and not writable by others, or "
        f"set {UNPINNED_BINDS_ENV}=allow to accept that"
    )


def changed_on_the_way(before: Sequence[PathStep], after: Sequence[PathStep]) -> str | None:
    """The first component that is not the one checked before the start, if any."""
    for old, new in zip(before, after, strict=False):
        if old.identity != new.identity or old.mode != new.mode:
            return old.path
    return None if len(before) == len(after) else before[-1].path

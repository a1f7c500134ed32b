"""A job's bind sources pinned for the engine: no swap between our check and its mount.

The engine resolves a bind's host path when the container STARTS, and records it as
given (its Mounts view shows the literal path, so asking it after create tells nothing).
A path the policy passed can therefore be swapped for a symbolic link (to /etc, say)
in between, by whoever may write to one of its parent directories: another job whose
volume holds it, a user of the host.

So, where we can (on the host itself, as root, in the mount namespace of PID 1, where
the engine runs), each checked bind source is opened, the kernel is asked where the
directory it opened really is (it must be the very path the policy checked, or the
launch is refused), and that directory's mount is cloned from the open descriptor
(open_tree) and attached below a directory only root may enter. The engine gets that
path, which nobody but root can change, and mounts exactly what was checked; the clone
is detached once the container has started (the container keeps its own mount).

Elsewhere (the scheduler in a container, as non-root) the engine gets the sources as
checked, and each must pass the writable-parent rule first (orchestrator.runner.unpinned:
only root could swap it), unless ORCHESTRATOR_UNPINNED_BINDS=allow.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import socket
import stat
import struct
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import replace
from pathlib import Path

from orchestrator.errors import UnsafeJobError
from orchestrator.hostpaths import MountPlan, SelfContainer
from orchestrator.runner.unpinned import check_unchanged, check_unpinned

log = logging.getLogger(__name__)

# Where pinned sources are attached: a root-only directory of the host's.
PIN_ROOT = "/run/orchestrator-pins"
# Linux syscall numbers (the same on x86_64 and arm64) and flags (linux/mount.h).
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000  # with its sub-mounts, as the engine's own (recursive) bind
AT_FDCWD = -100
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _call(result: int, what: str) -> int:
    if result < 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")
    return result


def engine_mount_namespace(engine_socket: str) -> str | None:
    """The mount namespace of whatever listens on the engine's socket (its peer's)."""
    try:
        with socket.socket(socket.AF_UNIX) as peer:
            peer.settimeout(5)
            peer.connect(engine_socket)
            raw = peer.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid = struct.unpack("3i", raw)[0]
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def can_pin(where: SelfContainer, engine_socket: str | None) -> bool:
    """Whether this process can pin sources where the engine will see them: on the host,
    as root, in the mount namespace of the process behind the engine's socket."""
    if sys.platform != "linux" or where.in_container or os.geteuid() != 0 or not engine_socket:
        return False
    try:
        ours = os.readlink("/proc/self/ns/mnt")
    except OSError:
        return False
    return engine_mount_namespace(engine_socket) == ours


class BindPinner:
    """Pins the checked bind sources of one launch (see the module doc)."""

    def __init__(
        self,
        where: SelfContainer,
        engine_socket: str | None,
        root: str = PIN_ROOT,
        *,
        allow_unpinned: bool = False,
    ) -> None:
        self.enabled = can_pin(where, engine_socket)
        self.root = root
        self.allow_unpinned = allow_unpinned

    @contextmanager
    def pinned(self, job: str, plans: Sequence[MountPlan]) -> Iterator[list[MountPlan]]:
        """`plans` with each checked bind's source replaced by its pin, for as long as
        the block runs (the container's create and start)."""
        if not any(plan.checked for plan in plans):
            yield list(plans)
            return
        cleanup = ExitStack()
        result: list[MountPlan] | None = None
        try:
            if self.enabled:
                result = self._pin_all(job, plans, cleanup)
        except UnsafeJobError:  # a PermissionError, so an OSError: never a reason to give up
            cleanup.close()
            raise
        except OSError as error:
            cleanup.close()
            if error.errno not in (errno.EPERM, errno.ENOSYS):
                raise UnsafeJobError(
                    f"job {job!r}: volumes: its host paths cannot be pinned for the engine: {error}"
                ) from None
            self._give_up(error)  # no open_tree here, or no right to mount: unpinned
        except BaseException:
            cleanup.close()
            raise
        if result is not None:
            with cleanup:
                yield result
            return
        if self.allow_unpinned:
            yield list(plans)
            return
        walked = check_unpinned(job, plans)
        yield list(plans)
        check_unchanged(job, walked)  # the container started: what it got is still ours

    def _pin_all(self, job: str, plans: Sequence[MountPlan], cleanup: ExitStack) -> list[MountPlan]:
        base = self._launch_dir()
        cleanup.callback(_remove_empty, base)
        result = []
        for index, plan in enumerate(plans):
            if plan.checked and plan.type == "bind":
                pin = self._pin(job, plan, os.path.join(base, str(index)), cleanup)
                plan = replace(plan, source=pin)
            result.append(plan)
        return result

    def _launch_dir(self) -> str:
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        info = os.lstat(self.root)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o077:
            raise OSError(f"{self.root} is not a directory that only root may enter")
        return tempfile.mkdtemp(dir=self.root)

    def _pin(self, job: str, plan: MountPlan, at: str, cleanup: ExitStack) -> str:
        try:
            fd = os.open(plan.source, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as error:
            why = "does not exist" if error.errno == errno.ENOENT else error.strerror
            raise UnsafeJobError(
                f"job {job!r}: volumes: {plan.target}: host path {plan.source} {why}"
            ) from None
        cleanup.callback(os.close, fd)
        opened = os.readlink(f"/proc/self/fd/{fd}")
        kind = os.fstat(fd).st_mode
        if opened != plan.source or stat.S_ISLNK(kind):
            # Swapped for a link (or moved) since the policy looked: what it checked is
            # not what the engine would mount.
            now = "a symbolic link" if stat.S_ISLNK(kind) else f"at {opened}"
            raise UnsafeJobError(
                f"job {job!r}: volumes: {plan.target}: host path {plan.source} changed "
                f"while it was checked (it is now {now}): not mounted"
            )
        if stat.S_ISDIR(kind):
            os.mkdir(at, 0o700)
        else:
            Path(at).touch(0o600)
        cleanup.callback(_remove_empty, at)
        libc = _libc()
        flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE
        tree = _call(libc.syscall(SYS_OPEN_TREE, fd, b"", flags), "open_tree")
        cleanup.callback(os.close, tree)
        _call(
            libc.syscall(SYS_MOVE_MOUNT, tree, b"", AT_FDCWD, at.encode(), MOVE_MOUNT_F_EMPTY_PATH),
            "move_mount",
        )
        # Runs before the launch directory is removed (callbacks run last first).
        cleanup.callback(self._unpin, at)
        return at

    def _unpin(self, at: str) -> None:
        with suppress(OSError):
            _call(_libc().umount2(at.encode(), MNT_DETACH | UMOUNT_NOFOLLOW), "umount2")

    def _give_up(self, error: OSError) -> None:
        log.warning("bind sources cannot be pinned here (%s): held to the parents rule", error)
        self.enabled = False


def _remove_empty(path: str) -> None:
    """Remove a staging entry once its pin is detached; never what a pin showed (rmdir of
    a directory still mounted or not empty fails, and stays, harmlessly)."""
    with suppress(OSError):
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        else:
            os.unlink(path)

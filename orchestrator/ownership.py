"""Who owns a run: one id per process that runs containers, and whether that owner is
still alive. Pure, but for making an id and probing a process."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta


def make_owner_id() -> str:
    """host:pid:token. The token tells an earlier life of the same pid (container restart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Here:
    """The process asking: its host name and pid."""

    host: str
    pid: int

    @staticmethod
    def now() -> Here:
        return Here(socket.gethostname(), os.getpid())


def process_exists(pid: int) -> bool | None:
    """True or False for a process of this host; None when we may not tell."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return None
    return True


def owner_is_dead(
    owner: str | None,
    heartbeat_at: datetime | None,
    now: datetime,
    stale_after: timedelta,
    here: Here,
    exists: Callable[[int], bool | None] = process_exists,
) -> bool:
    """Whether a run's owner is gone, so that the run may be adopted.

    On our own host the process table decides: our own pid under another token is an
    earlier life of this process (a container restarted), and a pid that is gone is
    dead. Elsewhere (or when we may not tell) a heartbeat older than `stale_after` is.
    """
    host, _, rest = (owner or "").partition(":")
    pid_text, _, _token = rest.partition(":")
    if host == here.host and pid_text.isdigit():
        pid = int(pid_text)
        if pid == here.pid:
            return True
        if exists(pid) is False:
            return True
    return heartbeat_at is None or now - heartbeat_at > stale_after

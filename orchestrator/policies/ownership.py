"""Whether a run's owner is still alive, so that another scheduler may adopt the run. Pure:
the owner's id is made, and the process table probed, in runner/identity.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Here:
    """The process asking: its host name and pid."""

    host: str
    pid: int


def owner_is_dead(
    owner: str | None,
    heartbeat_at: datetime | None,
    now: datetime,
    stale_after: timedelta,
    here: Here,
    exists: Callable[[int], bool | None],
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

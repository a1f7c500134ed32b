"""Who this process is, as a run's owner: one id per process that runs containers, and
the probe of this host's process table that the ownership policy is given."""

from __future__ import annotations

import os
import secrets
import socket

from orchestrator.policies.ownership import Here


def make_owner_id() -> str:
    """host:pid:token. The token tells an earlier life of the same pid (container restart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def here_now() -> Here:
    """The process asking: its host name and pid."""
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

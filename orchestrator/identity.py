"""Who owns a run: one id per process that runs containers."""

from __future__ import annotations

import os
import secrets
import socket


def make_owner_id() -> str:
    """host:pid:token. The token tells an earlier life of the same pid (container restart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

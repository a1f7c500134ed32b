"""The use cases, written once for every edge: the CLI and the HTTP API parse their input,
call these, and format what comes back with `orchestrator.shapes`, so both give the same
JSON.

Every write is audited under the actor the edge names (`cli:<user>`, a token's name).
"""

# The package loads its parts when a name is first asked for, so that a CLI command that
# only formats does not import the store and the engine drivers (SQLAlchemy, docker) at
# start-up.

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.operations.context import Backends
    from orchestrator.operations.core import Operations
    from orchestrator.operations.jobs import (
        MissingSecret,
        find_missing_secrets,
        refuse_forbidden_secrets,
    )
    from orchestrator.operations.runs import (
        Ended,
        Output,
        RunEvent,
        Waiting,
        Withheld,
        cancel_run,
    )

_HOMES = {
    "Backends": "context",
    "Operations": "core",
    "MissingSecret": "jobs",
    "find_missing_secrets": "jobs",
    "refuse_forbidden_secrets": "jobs",
    "Ended": "runs",
    "Output": "runs",
    "RunEvent": "runs",
    "Waiting": "runs",
    "Withheld": "runs",
    "cancel_run": "runs",
}

__all__ = [
    "Backends",
    "Ended",
    "MissingSecret",
    "Operations",
    "Output",
    "RunEvent",
    "Waiting",
    "Withheld",
    "cancel_run",
    "find_missing_secrets",
    "refuse_forbidden_secrets",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)

"""The use cases, written once for every edge: the CLI and the HTTP API parse their input,
call these, and format what comes back (with `shapes`, so both give the same JSON).

Every write is audited under the actor the edge names (`cli:<user>`, a token's name).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.operations.context import Audited, Backends
from orchestrator.operations.doctor import doctor_report, pool_report
from orchestrator.operations.jobs import JobOperations, MissingSecret, find_missing_secrets
from orchestrator.operations.runs import (
    Ended,
    Output,
    RunEvent,
    RunOperations,
    Waiting,
    Withheld,
    cancel_run,
)
from orchestrator.records import AuditEntry, PortLease

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
]


@dataclass
class Operations:
    backends: Backends
    actor: str
    jobs: JobOperations = field(init=False)
    runs: RunOperations = field(init=False)

    def __post_init__(self) -> None:
        audited = Audited(self.backends, self.actor)
        self.jobs = JobOperations(audited)
        self.runs = RunOperations(audited)

    def as_actor(self, actor: str) -> Operations:
        """The same use cases, audited under another name (one per API token)."""
        return Operations(self.backends, actor)

    def leases(self) -> list[PortLease]:
        """The host ports leased to runs now."""
        return self.backends.store.leases()

    def pool(self) -> dict[str, Any]:
        return pool_report(self.backends)

    def doctor(self) -> dict[str, Any]:
        return doctor_report(self.backends)

    def audit_entries(self, *, limit: int = 50, before: int | None = None) -> list[AuditEntry]:
        """Newest first; the next page is `before=<the last one's id>`."""
        return self.backends.store.audit_entries(limit=limit, before=before)

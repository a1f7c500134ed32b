"""The use cases together, for one actor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.operations.context import Audited, Backends
from orchestrator.operations.doctor import doctor_report, pool_report
from orchestrator.operations.jobs import JobOperations
from orchestrator.operations.runs import RunOperations
from orchestrator.records import AuditEntry, PortLease


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

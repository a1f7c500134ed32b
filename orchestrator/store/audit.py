"""The audit trail: every write through the CLI or the HTTP API."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.policies.columns import fit_text
from orchestrator.records import AuditEntry
from orchestrator.store.models import AuditRow

# Column widths (models.AuditRow): longer values are cut, never refused.
ACTOR_WIDTH = TARGET_WIDTH = 255
ACTION_WIDTH = 64


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self, *, at: datetime, actor: str, action: str, target: str | None, result: str
    ) -> AuditEntry:
        row = AuditRow(
            at=at,
            actor=fit_text(actor)[:ACTOR_WIDTH],
            action=fit_text(action)[:ACTION_WIDTH],
            target=fit_text(target)[:TARGET_WIDTH] if target is not None else None,
            result=fit_text(result),
        )
        self.session.add(row)
        self.session.flush()
        return _record(row)

    def list(self, *, limit: int, before: int | None = None) -> list[AuditEntry]:
        """Newest first; `before` an id for the next page."""
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if before is not None:
            query = query.where(AuditRow.id < before)
        return [_record(row) for row in self.session.scalars(query)]


def _record(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        result=row.result,
    )

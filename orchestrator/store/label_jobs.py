"""Jobs from container labels in the database: one idempotent reconcile per look.

Only what changed is written (several schedulers on one database reconcile the same
containers without fighting): a job whose definition, source and enabled state are as
stored is not touched. A name held by another source (a job file, another container)
stays with it: the newcomer is refused. Label jobs no container in this scheduler's
scope defines any more are deleted (their run history stays).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from orchestrator.policies.label_jobs import SOURCE_PREFIX
from orchestrator.store.models import JobRow


@dataclass(frozen=True)
class WantedLabelJob:
    name: str
    definition: dict[str, Any]
    source: str
    enabled: bool


@dataclass
class LabelSync:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    # (job, newcomer's source, holder's source)
    clashes: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


def is_label_source(source: str | None) -> bool:
    return source is not None and source.startswith(SOURCE_PREFIX)


def reconcile(
    session: Session,
    wanted: Sequence[WantedLabelJob],
    foreign: Collection[str],
    now: datetime | None = None,
) -> LabelSync:
    """Make the stored label jobs what `wanted` says, but for those of `foreign` sources
    (containers that exist but are outside this scheduler's label filter)."""
    now = now or datetime.now(UTC)
    result = LabelSync()
    # Only the rows a look can touch: the names wanted and the label jobs (not every
    # definition of 10,000 file jobs on each look).
    names = {job.name for job in wanted}
    touched = JobRow.source.startswith(SOURCE_PREFIX, autoescape=True)
    if names:
        touched = or_(touched, JobRow.name.in_(names))
    rows = {row.name: row for row in session.scalars(select(JobRow).where(touched))}
    winners: dict[str, WantedLabelJob] = {}
    for job in wanted:
        row = rows.get(job.name)
        holder = winners.get(job.name)
        if holder is None and row is not None and row.source != job.source:
            # The stored holder keeps the name while it still wants it (or is not ours).
            wants = any(o.name == job.name and o.source == row.source for o in wanted)
            if wants or not _takeable(row, foreign):
                holder = WantedLabelJob(job.name, {}, row.source or "the database", True)
        if holder is not None:
            if holder.source != job.source:
                result.clashes.append((job.name, job.source, holder.source))
            continue
        winners[job.name] = job
    for job in winners.values():
        row = rows.get(job.name)
        if row is None:
            session.add(
                JobRow(
                    name=job.name,
                    definition=job.definition,
                    enabled=job.enabled,
                    revision=1,
                    source=job.source,
                    created_at=now,
                    updated_at=now,
                )
            )
            result.created.append(job.name)
            continue
        if (row.definition, row.enabled, row.source) == (job.definition, job.enabled, job.source):
            continue
        row.definition, row.enabled, row.source = job.definition, job.enabled, job.source
        row.revision += 1
        row.updated_at = now
        result.updated.append(job.name)
    for name, row in rows.items():
        if name not in winners and _takeable(row, foreign):
            session.delete(row)
            result.deleted.append(name)
    return result


def _takeable(row: JobRow, foreign: Collection[str]) -> bool:
    """A label job of ours that its source no longer wants may be taken over or deleted
    (its container was removed or renamed, or its labels changed)."""
    return is_label_source(row.source) and row.source not in foreign

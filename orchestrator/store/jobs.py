"""Job definitions in the database."""

from __future__ import annotations

import fnmatch
import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import ScalarSelect, Select

from orchestrator.errors import JobNotFoundError, NotFoundError, RefusedError, quote
from orchestrator.policies.chains import chaining_to, check_chains
from orchestrator.policies.columns import SOURCE_LENGTH, fit_tail, fit_text
from orchestrator.records import ApplyResult, JobListing, JobRecord, RunStatus
from orchestrator.store.label_jobs import is_label_source
from orchestrator.store.models import JobRow, RunRow

if TYPE_CHECKING:
    from orchestrator.spec import JobSpec, LoadedJob

# Stored definitions were validated when applied; parsing them again on every read cost
# most of a 1,000-job listing. A definition is immutable under (row id, name, revision,
# updated_at): every change bumps the revision, a job made again gets a new row.
_SPECS: OrderedDict[tuple[int, str, int, datetime], JobSpec] = OrderedDict()
_SPECS_KEPT = 20_000
_SPECS_LOCK = threading.Lock()


def _spec(row: JobRow) -> JobSpec:
    key = (row.id, row.name, row.revision, row.updated_at)
    with _SPECS_LOCK:
        found = _SPECS.get(key)
        if found is not None:
            _SPECS.move_to_end(key)
            return found
    from orchestrator.spec import parse_job

    spec = parse_job(row.definition, source=f"database job {row.name!r}")
    with _SPECS_LOCK:
        _SPECS[key] = spec
        while len(_SPECS) > _SPECS_KEPT:
            _SPECS.popitem(last=False)
    return spec


def _record(row: JobRow, last_status: str | None = None) -> JobRecord:
    return JobRecord(
        spec=_spec(row),
        enabled=row.enabled,
        revision=row.revision,
        source=row.source,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_status=RunStatus(last_status) if last_status else None,
        paused_at=row.paused_at,
        paused_by=row.paused_by,
    )


def _latest_status() -> ScalarSelect[str]:
    """The status of a job's latest run (by scheduled time), correlated to its JobRow."""
    return (
        select(RunRow.status)
        .where(RunRow.job_name == JobRow.name)
        .order_by(RunRow.scheduled_for.desc(), RunRow.id.desc())
        .limit(1)
        .correlate(JobRow)
        .scalar_subquery()
    )


def listing_query() -> Select[Any]:
    """JobRepository.listing's statement: one correlated lookup of the newest run per job
    (store/plans.py explains it; store/sqlite_listing.py runs the same SQL)."""
    return select(
        JobRow.name,
        JobRow.enabled,
        JobRow.definition,
        JobRow.revision,
        JobRow.source,
        JobRow.created_at,
        JobRow.updated_at,
        _latest_status(),
        JobRow.paused_at,
        JobRow.paused_by,
    ).order_by(JobRow.name)


class JobRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def apply(
        self, jobs: Sequence[LoadedJob], *, prune: bool = False, now: datetime | None = None
    ) -> ApplyResult:
        """Create or update every job in the batch; with `prune`, delete jobs not in it.

        `enabled` from a file wins only when the file's own value changed, so a job an
        operator disabled by hand stays disabled when the same files are applied again.
        """
        now = now or datetime.now(UTC)
        result = ApplyResult()
        existing = {row.name: row for row in self.session.scalars(select(JobRow))}
        for job in jobs:
            definition = job.spec.to_dict()
            source = _fitted_source(job.source)
            row = existing.get(job.spec.name)
            _refuse_label_job(row, "applied from a file")
            if row is None:
                self.session.add(
                    JobRow(
                        name=job.spec.name,
                        definition=definition,
                        enabled=job.spec.enabled,
                        revision=1,
                        source=source,
                        created_at=now,
                        updated_at=now,
                    )
                )
                result.created.append(job.spec.name)
                continue
            if row.definition == definition:
                if row.source != source:
                    row.source = source
                result.unchanged.append(job.spec.name)
                continue
            if definition.get("enabled") != row.definition.get("enabled"):
                row.enabled = job.spec.enabled
            row.definition = definition
            row.source = source
            row.revision += 1
            row.updated_at = now
            result.updated.append(job.spec.name)
        stale: list[str] = []
        if prune:
            wanted = {job.spec.name for job in jobs}
            stale = sorted(
                name
                for name, row in existing.items()
                if name not in wanted and not is_label_source(row.source)
            )
        graph = {name: _chain_targets(row.definition) for name, row in existing.items()}
        graph.update({job.spec.name: (*job.spec.on_success, *job.spec.on_failure) for job in jobs})
        for name in stale:
            graph.pop(name)
        # Before anything is written: refused, nothing changes.
        check_chains(graph, [job.spec.name for job in jobs])
        if stale:
            self.session.execute(delete(JobRow).where(JobRow.name.in_(stale)))
        result.deleted.extend(stale)
        return result

    def chains(self) -> dict[str, tuple[str, ...]]:
        """Every job and the jobs its chains start."""
        rows = self.session.execute(select(JobRow.name, JobRow.definition))
        return {name: _chain_targets(definition) for name, definition in rows}

    def listing(self) -> list[JobListing]:
        """All jobs by name, as a listing shows them (no definition parsed again)."""
        rows = self.session.execute(listing_query())
        return [JobListing.from_stored(*row) for row in rows]

    def list(self) -> list[JobRecord]:
        """All jobs by name, each with the status of its latest run."""
        rows = self.session.execute(select(JobRow, _latest_status()).order_by(JobRow.name))
        return [_record(row, status) for row, status in rows.all()]

    def _row(self, name: str) -> JobRow:
        row = self.session.scalar(select(JobRow).where(JobRow.name == name))
        if row is None:
            raise JobNotFoundError(name)
        return row

    def get(self, name: str) -> JobRecord:
        found = self.session.execute(
            select(JobRow, _latest_status()).where(JobRow.name == name)
        ).first()
        if found is None:
            raise JobNotFoundError(name)
        return _record(found[0], found[1])

    def set_enabled(self, name: str, enabled: bool, now: datetime | None = None) -> bool:
        """Enable or disable a job; returns whether anything changed."""
        row = self._row(name)
        _refuse_label_job(row, "enabled" if enabled else "disabled")
        if row.enabled == enabled:
            return False
        row.enabled = enabled
        row.revision += 1
        row.updated_at = now or datetime.now(UTC)
        return True

    def set_paused(
        self, pattern: str, paused: bool, actor: str, now: datetime | None = None
    ) -> tuple[str, ...]:
        """Pause (or resume) the jobs whose names match the glob; the names changed.
        Each change bumps the revision, so every scheduler's timetable follows; resuming
        sets updated_at, so catch-up never reaches back into the pause."""
        now = now or datetime.now(UTC)
        changed = []
        for row in self.session.scalars(select(JobRow).order_by(JobRow.name)):
            if not fnmatch.fnmatchcase(row.name, pattern) or (row.paused_at is not None) == paused:
                continue
            row.paused_at = now if paused else None
            row.paused_by = fit_text(actor)[:200] if paused else None
            row.revision += 1
            row.updated_at = now
            changed.append(row.name)
        if not changed and not any(
            fnmatch.fnmatchcase(name, pattern) for name in self.session.scalars(select(JobRow.name))
        ):
            raise NotFoundError(f"no job matches {quote(pattern)}")
        return tuple(changed)

    def claim_start(self, name: str, now: datetime, window: timedelta) -> bool:
        """Claim the `run_on_start` fire of a service start: True for one scheduler of
        those starting within `window` of each other (one conditional UPDATE decides)."""
        result = self.session.execute(
            update(JobRow)
            .where(JobRow.name == name)
            .where((JobRow.start_fired_at.is_(None)) | (JobRow.start_fired_at < now - window))
            .values(start_fired_at=now)
        )
        return bool(getattr(result, "rowcount", 0))

    def delete(self, name: str, *, force: bool = False) -> None:
        """Delete a job definition (its run history stays). Refused while other jobs
        chain to it, unless `force` (their chains then start nothing for it: a skipped
        run says so)."""
        row = self._row(name)
        _refuse_label_job(row, "deleted")
        others = chaining_to(name, self.chains())
        if others and not force:
            raise RefusedError(
                f"job {name!r} is chained to by {', '.join(repr(o) for o in others)}: "
                "change those first, or delete it anyway with --force"
            )
        self.session.delete(row)

    def signature(self) -> tuple[object, ...]:
        """Changes whenever any job is added, changed or deleted: (count, newest change,
        sum of revisions). One cheap query, polled by the service."""
        return tuple(self.session.execute(_SIGNATURE).one())

    def count(self) -> int:
        return self.session.scalar(select(func.count()).select_from(JobRow)) or 0


_JOBS = cast(Table, JobRow.__table__)
# Polled by every scheduler once a second: a Core statement, built once.
_SIGNATURE = select(func.count(), func.max(_JOBS.c.updated_at), func.sum(_JOBS.c.revision))


def _refuse_label_job(row: JobRow | None, how: str) -> None:
    """Jobs from container labels change with their labels only."""
    if row is not None and is_label_source(row.source):
        raise RefusedError(
            f"job {row.name!r} comes from container labels ({row.source}): it cannot be "
            f"{how}; change or remove the container's labels instead"
        )


def _fitted_source(source: str | None) -> str | None:
    """Where a job came from, as its column holds it: a path of any length or bytes (a
    file name that is not UTF-8) is shown by its end, not refused."""
    fitted = fit_text(source)
    return fit_tail(fitted, SOURCE_LENGTH) if fitted is not None else None


def _chain_targets(definition: dict[str, Any]) -> tuple[str, ...]:
    return (*definition.get("on_success", ()), *definition.get("on_failure", ()))

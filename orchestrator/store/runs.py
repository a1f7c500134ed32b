"""Run history in the database."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    true,
    union,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, defer

from orchestrator.errors import DuplicateFireError, RunFinishedError, RunNotFoundError
from orchestrator.policies.columns import fit_text
from orchestrator.records import (
    FINISHED_STATUSES,
    NewRun,
    RunDot,
    RunRecord,
    RunStatus,
    RunTrigger,
)
from orchestrator.store.database import rowcount
from orchestrator.store.models import JobRow, RunRow

# The writes of a run's life (its insert, container, start, end, heartbeats, claims)
# and `get` are Core statements on the table: the ORM's UPDATE (which compiles an evaluator
# for the session's objects) and its row objects cost twice the CPU, and the service
# makes these for every run. No session keeps run objects across them.
_RUNS = cast(Table, RunRow.__table__)
_C = _RUNS.c
_INSERT_RUN = insert(_RUNS).returning(*_RUNS.c)
_UNFINISHED = (RunStatus.PENDING.value, RunStatus.RUNNING.value)
_FINISHED = tuple(status.value for status in FINISHED_STATUSES)
# Polled four times a second by every scheduler: a Core statement of ids, built once,
# is cheap to run; the records are loaded only when there are runs to start.
_DUE_PENDING_IDS = (
    select(_C.id)
    .where(
        _C.status == RunStatus.PENDING.value,
        _C.owner.is_(None),
        _C.due_at.is_(None) | (_C.due_at <= bindparam("now")),
    )
    .order_by(_C.id)
    .limit(bindparam("limit"))
)
_CANCEL_ASKED = _C.cancel_requested_at.is_not(None)
# A run's record without its output (the tail can be a megabyte).
_WITHOUT_OUTPUT = tuple(column for column in _C if column.name != "output")


def _as_utc(moment: datetime) -> datetime:
    # Aggregates bypass the column type on SQLite: attach UTC to naive values.
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _record(row: RunRow | Row[Any], *, with_output: bool = False) -> RunRecord:
    # An ORM row or a Core one: the table's columns are named as the mapped attributes.
    return RunRecord(
        id=row.id,
        job=row.job_name,
        trigger=RunTrigger(row.trigger),
        attempt=row.attempt,
        status=RunStatus(row.status),
        scheduled_for=row.scheduled_for,
        created_at=row.created_at,
        first_run_id=row.first_run_id,
        parent_run_id=row.parent_run_id,
        started_at=row.started_at,
        finished_at=row.finished_at,
        exit_code=row.exit_code,
        container_id=row.container_id,
        image=row.image,
        image_digest=row.image_digest,
        ports=dict(row.ports or {}),
        error=row.error,
        output=row.output if with_output else None,
        output_truncated=row.output_truncated,
        output_limit=row.output_limit,
        owner=row.owner,
        heartbeat_at=row.heartbeat_at,
        due_at=row.due_at,
        cancel_requested_at=row.cancel_requested_at,
    )


def recent_by_job_query(
    since: datetime, per_job: int, dialect: str
) -> Select[int, str, str, datetime]:
    """For each stored job, its newest `per_job` runs since `since`, each job's looked up
    through the (job_name, scheduled_for) index: a few index probes per job. Ranking
    every run of the window with a window function let SQLite scan all the runs (through
    the chain index): 300 ms at 100,000 runs where this takes 4 to 12 ms. PostgreSQL
    takes a LATERAL join; SQLite, which has none, a correlated `IN (... LIMIT)`, which
    PostgreSQL would evaluate for every run."""
    newest = aliased(RunRow)
    if dialect == "postgresql":
        lateral = (
            select(newest.id, newest.status, newest.scheduled_for)
            .where(newest.job_name == JobRow.name, newest.scheduled_for >= since)
            .order_by(newest.scheduled_for.desc(), newest.id.desc())
            .limit(per_job)
            .lateral("newest")
        )
        return (
            select(lateral.c.id, JobRow.name, lateral.c.status, lateral.c.scheduled_for)
            .select_from(JobRow)
            .join(lateral, true())
            .order_by(JobRow.name, lateral.c.scheduled_for.desc(), lateral.c.id.desc())
        )
    ids = (
        select(newest.id)
        .where(newest.job_name == JobRow.name, newest.scheduled_for >= since)
        .order_by(newest.scheduled_for.desc(), newest.id.desc())
        .limit(per_job)
        .correlate(JobRow)
    )
    return (
        select(RunRow.id, RunRow.job_name, RunRow.status, RunRow.scheduled_for)
        .select_from(JobRow)
        .join(RunRow, RunRow.id.in_(ids))
        .order_by(RunRow.job_name, RunRow.scheduled_for.desc(), RunRow.id.desc())
    )


def list_query(
    *,
    job: str | None = None,
    status: RunStatus | None = None,
    since: datetime | None = None,
    before: int | None = None,
    limit: int | None = 50,
) -> Select[RunRow]:
    """RunRepository.list's statement (store/plans.py explains it)."""
    query = select(RunRow).options(defer(RunRow.output))
    if before is not None:
        anchor = select(RunRow.scheduled_for).where(RunRow.id == before).scalar_subquery()
        query = query.where(
            (RunRow.scheduled_for < anchor)
            | ((RunRow.scheduled_for == anchor) & (RunRow.id < before))
        )
    if job is not None:
        query = query.where(RunRow.job_name == job)
    if status is not None:
        query = query.where(RunRow.status == status.value)
    if since is not None:
        query = query.where(RunRow.scheduled_for >= since)
    query = query.order_by(RunRow.scheduled_for.desc(), RunRow.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return query


def window_query(start: datetime, limit: int) -> Select[RunRow]:
    """RunRepository.in_window's statement. One OR over the three columns let SQLite walk
    the whole scheduled_for index (1 s at a million runs): each part reads its own index."""
    parts = (
        select(RunRow.id).where(RunRow.scheduled_for >= start),
        select(RunRow.id).where(RunRow.finished_at >= start),
        select(RunRow.id).where(RunRow.status.in_(_UNFINISHED)),
    )
    return (
        select(RunRow)
        .options(defer(RunRow.output))
        .where(RunRow.id.in_(union(*parts)))
        .order_by(RunRow.scheduled_for.desc(), RunRow.id.desc())
        .limit(limit)
    )


class RunRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, run: NewRun, now: datetime | None = None) -> RunRecord:
        """Record a run. The database decides: a second run for the same fire
        (job, scheduled_for, attempt) raises DuplicateFireError and changes nothing."""
        moment = now or datetime.now(UTC)
        values = dict(
            job_name=run.job,
            trigger=run.trigger.value,
            attempt=run.attempt,
            first_run_id=run.first_run_id,
            parent_run_id=run.parent_run_id,
            scheduled_for=run.scheduled_for,
            status=run.status.value,
            created_at=moment,
            started_at=run.started_at,
            finished_at=run.finished_at,
            exit_code=run.exit_code,
            container_id=run.container_id,
            image=run.image,
            error=fit_text(run.error),
            output=fit_text(run.output),
            output_truncated=run.output_truncated,
            owner=run.owner,
            heartbeat_at=moment if run.owner else None,
            due_at=run.due_at,
        )
        try:
            with self.session.begin_nested():
                row = self.session.execute(_INSERT_RUN, values).one()
        except IntegrityError:
            raise DuplicateFireError(
                f"job {run.job!r} already has a run for {run.scheduled_for.isoformat()} "
                f"(attempt {run.attempt})"
            ) from None
        return _record(row, with_output=True)

    def add_chained(self, run: NewRun) -> RunRecord | None:
        """Record a run started by a parent run's end: one per (job, parent), so a parent
        whose end is recorded twice starts it once (None then). Its time is the parent's
        end, moved on by a microsecond when another run of the job has that very time."""
        taken = self.session.scalar(
            select(RunRow.id).where(
                RunRow.job_name == run.job, RunRow.parent_run_id == run.parent_run_id
            )
        )
        if taken is not None:
            return None
        for step in range(1000):
            moment = run.scheduled_for + timedelta(microseconds=step)
            try:
                return self.add(replace(run, scheduled_for=moment))
            except DuplicateFireError:
                continue
        raise DuplicateFireError(f"job {run.job!r}: no free moment for a chained run")

    def set_container(
        self, run_id: int, container_id: str, image_digest: str | None, owner: str | None = None
    ) -> bool:
        """Record the container before it starts, so that a cancel can find it. With
        `owner`: only while the run is still that owner's (False: it was adopted)."""
        result = self.session.execute(
            update(_RUNS)
            .where(_C.id == run_id, *_owned_by(owner))
            .values(container_id=container_id, image_digest=image_digest)
        )
        return rowcount(result) == 1

    def mark_running(self, run_id: int, *, started_at: datetime, ports: dict[str, int]) -> bool:
        """pending -> running; False if the run is no longer pending, or a cancel was
        asked for (its container, just started, is to be stopped)."""
        result = self.session.execute(
            update(_RUNS)
            .where(
                _C.id == run_id,
                _C.status == RunStatus.PENDING.value,
                _C.cancel_requested_at.is_(None),
            )
            .values(status=RunStatus.RUNNING.value, started_at=started_at, ports=ports)
        )
        return rowcount(result) == 1

    def finish(
        self,
        run_id: int,
        *,
        status: RunStatus,
        finished_at: datetime,
        exit_code: int | None = None,
        error: str | None = None,
        output: str | None = None,
        output_truncated: bool = False,
        output_limit: int | None = None,
        owner: str | None = None,
    ) -> RunRecord:
        """End a run. If it ended already (cancelled meanwhile), its status stays and
        only what it lacks (exit code, output) is filled in. A run asked to cancel ends
        cancelled, however its container ended. With `owner`: nothing is written once
        the run is another owner's (adopted from a process that looked dead)."""
        captured = {
            "exit_code": exit_code,
            "output": fit_text(output),
            "output_truncated": output_truncated,
            "output_limit": output_limit,
        }
        result = self.session.execute(
            update(_RUNS)
            .where(_C.id == run_id, _C.status.in_(_UNFINISHED), *_owned_by(owner))
            .values(
                status=case((_CANCEL_ASKED, RunStatus.CANCELLED.value), else_=status.value),
                finished_at=finished_at,
                error=case((_CANCEL_ASKED, "cancelled"), else_=fit_text(error)),
                **captured,
            )
        )
        if rowcount(result) == 0:
            self.session.execute(
                update(_RUNS)
                .where(_C.id == run_id, _C.exit_code.is_(None), *_owned_by(owner))
                .values(**captured)
            )
        return self.get(run_id)

    def request_cancel(self, run_id: int, now: datetime) -> RunRecord:
        """Ask an unfinished run to cancel. One with no container yet ends cancelled at
        once (whoever starts it finds it so, and kills what it started); one with a
        container stays active, its cancel asked for, until that has stopped (then
        `finish` records it cancelled)."""
        at_once = self.session.execute(
            update(_RUNS)
            .where(
                _C.id == run_id,
                _C.status == RunStatus.PENDING.value,
                _C.container_id.is_(None),
            )
            .values(status=RunStatus.CANCELLED.value, finished_at=now, error="cancelled")
        )
        if rowcount(at_once) == 1:
            return self.get(run_id)
        self.session.execute(
            update(_RUNS)
            .where(_C.id == run_id, _C.status.in_(_UNFINISHED), _C.cancel_requested_at.is_(None))
            .values(cancel_requested_at=now)
        )
        run = self.get(run_id)
        if run.status.finished:
            raise RunFinishedError(f"run {run_id} has already ended ({run.status.value})")
        return run

    def end_cancelled(self, run_id: int, now: datetime) -> RunRecord:
        """Record a run asked to cancel as cancelled, its container seen stopped; its
        follower fills in the exit code and the output."""
        self.session.execute(
            update(_RUNS)
            .where(_C.id == run_id, _C.status.in_(_UNFINISHED))
            .values(status=RunStatus.CANCELLED.value, finished_at=now, error="cancelled")
        )
        return self.get(run_id)

    def cancel_requested(self, owner: str) -> list[RunRecord]:
        """The owner's unfinished runs asked to cancel: their containers still to stop."""
        query = (
            select(*_WITHOUT_OUTPUT)
            .where(
                _C.status.in_(_UNFINISHED),
                _C.cancel_requested_at.is_not(None),
                _C.owner == owner,
            )
            .order_by(_C.id)
        )
        return [_record(row) for row in self.session.execute(query)]

    # --- what a scheduler service needs ---------------------------------------------

    def claim_pending(self, run_id: int, owner: str, now: datetime) -> bool:
        """Take an unowned pending run (queued by `jobs run --detach`, or a retry)."""
        result = self.session.execute(
            update(_RUNS)
            .where(_C.id == run_id, _C.status == RunStatus.PENDING.value, _C.owner.is_(None))
            .values(owner=owner, heartbeat_at=now)
        )
        return rowcount(result) == 1

    def due_pending(self, now: datetime, limit: int = 100) -> list[RunRecord]:
        """Unowned pending runs whose time has come, oldest first."""
        ids = list(self.session.scalars(_DUE_PENDING_IDS, {"now": now, "limit": limit}))
        if not ids:
            return []
        query = (
            select(RunRow)
            .options(defer(RunRow.output))
            .where(RunRow.id.in_(ids))
            .order_by(RunRow.id)
        )
        return [_record(row) for row in self.session.scalars(query)]

    def waiting(self, now: datetime) -> tuple[int, datetime | None]:
        """Pending runs whose time has come, claimed by a scheduler or not: how many, and
        the earliest time one of them was due (the backlog of every scheduler)."""
        due = func.coalesce(RunRow.due_at, RunRow.scheduled_for)
        count, earliest = self.session.execute(
            select(func.count(), func.min(due)).where(
                RunRow.status == RunStatus.PENDING.value, due <= now
            )
        ).one()
        return int(count or 0), _as_utc(earliest) if earliest is not None else None

    def unfinished(self, job: str) -> list[RunRecord]:
        query = (
            select(RunRow)
            .options(defer(RunRow.output))
            .where(
                RunRow.job_name == job,
                RunRow.status.in_([RunStatus.PENDING.value, RunStatus.RUNNING.value]),
                RunRow.owner.is_not(None),
            )
            .order_by(RunRow.id)
        )
        return [_record(row) for row in self.session.scalars(query)]

    def heartbeat(self, owner: str, run_ids: list[int], now: datetime) -> None:
        if run_ids:
            self.session.execute(
                update(_RUNS).where(_C.id.in_(run_ids), _C.owner == owner).values(heartbeat_at=now)
            )

    def find_fire(self, job: str, scheduled_for: datetime, attempt: int = 1) -> RunRecord | None:
        row = self.session.scalar(
            select(RunRow).where(
                RunRow.job_name == job,
                RunRow.scheduled_for == scheduled_for,
                RunRow.attempt == attempt,
            )
        )
        return _record(row) if row is not None else None

    def unfinished_ids_of(self, owner: str, created_before: datetime) -> list[int]:
        """Our unfinished runs recorded before `created_before`: only their ids, for under
        an overload they are the whole backlog."""
        query = (
            select(RunRow.id)
            .where(
                RunRow.status.in_([RunStatus.PENDING.value, RunStatus.RUNNING.value]),
                RunRow.owner == owner,
                RunRow.created_at < created_before,
            )
            .order_by(RunRow.id)
        )
        return list(self.session.scalars(query))

    def ended_before(self, run_ids: Collection[int], before: datetime) -> list[RunRecord]:
        """Of these runs, those that ended before `before`, without their output: the
        leftover sweep asks this once for all the containers it sees."""
        wanted = sorted(set(run_ids))
        found: list[RunRecord] = []
        for start in range(0, len(wanted), 500):
            query = select(*_WITHOUT_OUTPUT).where(
                _C.id.in_(wanted[start : start + 500]),
                _C.status.in_(_FINISHED),
                _C.finished_at < before,
            )
            found += [_record(row) for row in self.session.execute(query)]
        return found

    def owned_elsewhere(self, owner: str) -> list[RunRecord]:
        """Unfinished runs that another scheduler (or an earlier life of ours) owns."""
        query = (
            select(RunRow)
            .options(defer(RunRow.output))
            .where(
                RunRow.status.in_([RunStatus.PENDING.value, RunStatus.RUNNING.value]),
                RunRow.owner.is_not(None),
                RunRow.owner != owner,
            )
            .order_by(RunRow.id)
        )
        return [_record(row) for row in self.session.scalars(query)]

    def adopt(self, run: RunRecord, owner: str, now: datetime) -> bool:
        """Take over a run from its dead owner; False if someone else was quicker."""
        result = self.session.execute(
            update(_RUNS)
            .where(_C.id == run.id, _C.owner == run.owner, _C.status.in_(_UNFINISHED))
            .values(owner=owner, heartbeat_at=now)
        )
        return rowcount(result) == 1

    def last_fires(self) -> dict[str, datetime]:
        """Each job's latest scheduled (or caught-up) fire, in one query."""
        rows = self.session.execute(
            select(RunRow.job_name, func.max(RunRow.scheduled_for))
            .where(RunRow.trigger.in_([RunTrigger.SCHEDULE.value, RunTrigger.CATCHUP.value]))
            .group_by(RunRow.job_name)
        )
        return {name: _as_utc(moment) for name, moment in rows}

    def recent_by_job(self, since: datetime, per_job: int) -> dict[str, list[RunDot]]:
        """Each job's newest runs scheduled since `since` (at most `per_job`), newest
        first: the strip of recent runs on the jobs page. Columns only, no ORM rows: it
        is read for every job on every load of that page."""
        found: dict[str, list[RunDot]] = {}
        for run_id, job, status, scheduled_for in self.session.execute(
            recent_by_job_query(since, per_job, self.session.get_bind().dialect.name)
        ):
            found.setdefault(job, []).append(
                RunDot(run_id, RunStatus(status), _as_utc(scheduled_for))
            )
        return found

    def in_window(self, start: datetime, limit: int) -> list[RunRecord]:
        """Runs that overlap [start, now): started or scheduled since, or still going."""
        return [_record(row) for row in self.session.scalars(window_query(start, limit))]

    def attempts(self, first_run_id: int) -> list[RunRecord]:
        """Every attempt of one fire: the first run and its retries, in order."""
        query = (
            select(RunRow)
            .options(defer(RunRow.output))
            .where((RunRow.id == first_run_id) | (RunRow.first_run_id == first_run_id))
            .order_by(RunRow.attempt, RunRow.id)
        )
        return [_record(row) for row in self.session.scalars(query)]

    def last_successes(self) -> dict[str, datetime]:
        """Each job's latest successful end, in one query."""
        rows = self.session.execute(
            select(RunRow.job_name, func.max(RunRow.finished_at))
            .where(RunRow.status == RunStatus.SUCCEEDED.value)
            .group_by(RunRow.job_name)
        )
        return {name: _as_utc(moment) for name, moment in rows if moment is not None}

    def previous_final_status(self, run: RunRecord) -> RunStatus | None:
        """How the job's fire before this run ended (its last attempt): for `recovered`."""
        row = self.session.execute(
            select(RunRow.status)
            .where(
                RunRow.job_name == run.job,
                RunRow.scheduled_for < run.scheduled_for,
                RunRow.status.in_(_FINISHED),
                RunRow.status != RunStatus.SKIPPED.value,
            )
            .order_by(RunRow.scheduled_for.desc(), RunRow.attempt.desc(), RunRow.id.desc())
            .limit(1)
        ).first()
        return RunStatus(row[0]) if row else None

    def get(self, run_id: int) -> RunRecord:
        row = self.session.execute(select(_RUNS).where(_C.id == run_id)).first()
        if row is None:
            raise RunNotFoundError(run_id)
        return _record(row, with_output=True)

    def list(
        self,
        *,
        job: str | None = None,
        status: RunStatus | None = None,
        since: datetime | None = None,
        before: int | None = None,
        limit: int | None = 50,
    ) -> list[RunRecord]:
        """Runs newest first (by scheduled time, then id), without their output.

        `before` is the id of the last run of the previous page: the page goes on after
        it in the same order (a keyset, so no run is repeated or skipped when new runs
        come meanwhile). An id that does not exist gives an empty page.
        """
        query = list_query(job=job, status=status, since=since, before=before, limit=limit)
        return [_record(row) for row in self.session.scalars(query)]

    def prune(self, older_than: datetime, *, dry_run: bool = False) -> int:
        """Delete finished runs scheduled before `older_than`.

        The newest run of every job is kept whatever its age, so `jobs list` still
        shows a last status and a restarted service still knows the last fire.
        """
        newer = aliased(RunRow)
        newest_of_its_job = (
            select(newer.id)
            .where(newer.job_name == RunRow.job_name)
            .order_by(newer.scheduled_for.desc(), newer.id.desc())
            .limit(1)
            .correlate(RunRow)
            .scalar_subquery()
        )
        condition = (
            (RunRow.scheduled_for < older_than)
            & RunRow.status.in_(_FINISHED)
            & (RunRow.id != newest_of_its_job)
        )
        if dry_run:
            return self.session.scalar(select(func.count()).where(condition)) or 0
        ids = list(self.session.scalars(select(RunRow.id).where(condition)))
        for start in range(0, len(ids), 500):
            self.session.execute(
                delete(RunRow).where(RunRow.id.in_(ids[start : start + 500])),
                execution_options={"synchronize_session": False},
            )
        return len(ids)


def _owned_by(owner: str | None) -> tuple[ColumnElement[bool], ...]:
    """The condition that fences a write to the run's owner (a run no one owns yet is
    anyone's); none without an owner."""
    if owner is None:
        return ()
    return (or_(_C.owner.is_(None), _C.owner == owner),)

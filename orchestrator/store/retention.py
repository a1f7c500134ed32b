"""Pruning the run history and the audit log in small batches, and the lease that lets
one scheduler at a time do it.

Whatever the rule, a run is kept when it is unfinished, its job's newest run, its job's
last scheduled (or caught-up) fire (what catch-up reads after downtime, also when a
manual run or a retry came after it), or the chain parent of a run that stays.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from orchestrator.records import FINISHED_STATUSES, RunTrigger
from orchestrator.store.database import rowcount
from orchestrator.store.models import AuditRow, MaintenanceLeaseRow, RunRow

_FINISHED = tuple(status.value for status in FINISHED_STATUSES)
_FIRES = (RunTrigger.SCHEDULE.value, RunTrigger.CATCHUP.value)


class RetentionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def job_names(self) -> list[str]:
        """Every job that has runs (deleted jobs' history included)."""
        return list(self.session.scalars(select(RunRow.job_name).distinct()))

    def _condition(
        self, job: str, keep: int | None, cutoff: datetime | None
    ) -> ColumnElement[bool] | None:
        """Which runs of `job` the rule would delete; None when it deletes none."""
        too_old: list[ColumnElement[bool]] = []
        if cutoff is not None:
            too_old.append(RunRow.scheduled_for < cutoff)
        if keep is not None:
            # The keep-th newest run: everything older than it goes.
            boundary = self.session.execute(
                select(RunRow.scheduled_for, RunRow.id)
                .where(RunRow.job_name == job)
                .order_by(RunRow.scheduled_for.desc(), RunRow.id.desc())
                .offset(keep - 1)
                .limit(1)
            ).first()
            if boundary is not None:
                moment, run_id = boundary
                too_old.append(
                    (RunRow.scheduled_for < moment)
                    | ((RunRow.scheduled_for == moment) & (RunRow.id < run_id))
                )
        if not too_old:
            return None
        protected = [
            run_id
            for run_id in (
                self._first_id(RunRow.job_name == job),
                self._first_id(RunRow.job_name == job, RunRow.trigger.in_(_FIRES)),
            )
            if run_id is not None
        ]
        child = aliased(RunRow)
        return and_(
            RunRow.job_name == job,
            RunRow.status.in_(_FINISHED),
            or_(*too_old),
            RunRow.id.not_in(protected),
            # Not correlated: the parents are read once, through ix_runs_parent_run_id.
            RunRow.id.not_in(select(child.parent_run_id).where(child.parent_run_id.is_not(None))),
        )

    def _first_id(self, *where: ColumnElement[bool]) -> int | None:
        return self.session.scalar(
            select(RunRow.id)
            .where(*where)
            .order_by(RunRow.scheduled_for.desc(), RunRow.id.desc())
            .limit(1)
        )

    def count(self, job: str, keep: int | None, cutoff: datetime | None) -> int:
        condition = self._condition(job, keep, cutoff)
        if condition is None:
            return 0
        return self.session.scalar(select(func.count()).select_from(RunRow).where(condition)) or 0

    def batch_ids(
        self, job: str, keep: int | None, cutoff: datetime | None, limit: int
    ) -> list[int]:
        """At most `limit` of the runs the rule deletes, the oldest first."""
        condition = self._condition(job, keep, cutoff)
        if condition is None:
            return []
        return list(
            self.session.scalars(
                select(RunRow.id)
                .where(condition)
                .order_by(RunRow.scheduled_for, RunRow.id)
                .limit(limit)
            )
        )

    def delete_ids(self, job: str, ids: list[int]) -> int:
        """Delete these runs of `job` that are still finished and no run's chain parent
        (read in another transaction: a retry or a chained run may have come since)."""
        if not ids:
            return 0
        child = aliased(RunRow)
        return rowcount(
            self.session.execute(
                delete(RunRow).where(
                    RunRow.id.in_(ids),
                    RunRow.job_name == job,
                    RunRow.status.in_(_FINISHED),
                    RunRow.id.not_in(
                        select(child.parent_run_id).where(child.parent_run_id.is_not(None))
                    ),
                ),
                execution_options={"synchronize_session": False},
            )
        )

    def count_audit(self, cutoff: datetime) -> int:
        return self.session.scalar(select(func.count()).where(AuditRow.at < cutoff)) or 0

    def delete_audit_batch(self, cutoff: datetime, limit: int) -> int:
        ids = list(
            self.session.scalars(
                select(AuditRow.id).where(AuditRow.at < cutoff).order_by(AuditRow.id).limit(limit)
            )
        )
        if not ids:
            return 0
        return rowcount(self.session.execute(delete(AuditRow).where(AuditRow.id.in_(ids))))

    def claim_lease(self, name: str, owner: str, now: datetime, until: datetime) -> bool:
        """Take (or renew) the lease `name` until `until`; False while another holds it."""
        taken = self.session.execute(
            update(MaintenanceLeaseRow)
            .where(
                MaintenanceLeaseRow.name == name,
                (MaintenanceLeaseRow.owner == owner) | (MaintenanceLeaseRow.until <= now),
            )
            .values(owner=owner, until=until)
        )
        if rowcount(taken) == 1:
            return True
        try:
            with self.session.begin_nested():
                self.session.add(MaintenanceLeaseRow(name=name, owner=owner, until=until))
        except IntegrityError:
            return False
        return True

    def release_lease(self, name: str, owner: str) -> None:
        self.session.execute(
            delete(MaintenanceLeaseRow).where(
                MaintenanceLeaseRow.name == name, MaintenanceLeaseRow.owner == owner
            )
        )

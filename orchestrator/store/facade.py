"""The store as its users need it: one method per operation, each its own transaction.

The service and the launcher call these instead of opening sessions and building
repositories, so SQLAlchemy stays inside `orchestrator/store/` and each operation can
be read (and retried, and later moved to another backend) on its own. Records in,
records out; the repositories behind keep the queries.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from orchestrator.errors import ConflictError, DuplicateFireError, JobNotFoundError
from orchestrator.records import (
    ApplyResult,
    AuditEntry,
    DeliveryStatus,
    JobListing,
    JobRecord,
    NewNotification,
    NewRun,
    Notification,
    PortLease,
    RunDot,
    RunRecord,
    RunStatus,
    RunTrigger,
)
from orchestrator.store import migrations
from orchestrator.store.audit import AuditRepository
from orchestrator.store.changes import ChangeFeed, feed_for, next_wakeup
from orchestrator.store.database import POSTGRES_CONNECT_TIMEOUT_S, Database
from orchestrator.store.jobs import JobRepository
from orchestrator.store.label_jobs import LabelSync, WantedLabelJob
from orchestrator.store.label_jobs import reconcile as reconcile_labels
from orchestrator.store.leases import PortLeaseRepository
from orchestrator.store.notifications import NotificationRepository
from orchestrator.store.retention import RetentionRepository
from orchestrator.store.runs import RunRepository

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from orchestrator.spec import LoadedJob

APPLY_ATTEMPTS = 5
# A notification not delivered within this long is given up (recorded `failed`).
NOTIFY_PATIENCE = timedelta(hours=24)
StartedEvents = Callable[[RunRecord], list[NewNotification]]
EndEvents = Callable[[RunRecord, RunStatus | None], list[NewNotification]]
# The jobs a finished run starts (orchestrator.policies.chains).
Chained = Callable[[RunRecord], Sequence[str]]
# The next attempt of a finished run, if any (orchestrator.policies.retries).
Retry = Callable[[RunRecord], NewRun | None]


class Store:
    def __init__(self, database: Database) -> None:
        self.database = database

    # --- jobs -----------------------------------------------------------------------------

    def apply_jobs(
        self,
        loaded: Sequence[LoadedJob],
        *,
        prune: bool = False,
        dry_run: bool = False,
        check: Callable[[ApplyResult], None] | None = None,
    ) -> ApplyResult:
        """Upsert job definitions, in one transaction. `check` sees the result before it
        is committed and may refuse it (by raising); `dry_run` never commits.

        Several schedulers starting at once apply the same files: the loser of an insert
        race tries again and finds the jobs there (unchanged)."""
        for attempt in range(APPLY_ATTEMPTS):
            try:
                with self.database.session() as session:
                    result = JobRepository(session).apply(loaded, prune=prune)
                    if check is not None:
                        check(result)
                    if dry_run:
                        session.rollback()
                    return result
            except ConflictError:
                if attempt == APPLY_ATTEMPTS - 1:
                    raise
                time.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")

    def reconcile_label_jobs(
        self, wanted: Sequence[WantedLabelJob], foreign: Collection[str]
    ) -> LabelSync:
        """Stored label jobs made what `wanted` says (but those of `foreign` sources),
        writing only what changed; a scheduler that lost an insert race looks again."""
        for attempt in range(APPLY_ATTEMPTS):
            try:
                with self.database.session() as session:
                    return reconcile_labels(session, wanted, foreign)
            except ConflictError:
                if attempt == APPLY_ATTEMPTS - 1:
                    raise
                time.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")

    def job(self, name: str) -> JobRecord:
        """The job; JobNotFoundError when there is none."""
        with self.database.session() as session:
            return JobRepository(session).get(name)

    def jobs(self) -> list[JobRecord]:
        """Every job by name, each with the status of its latest run."""
        with self.database.reading() as session:
            return JobRepository(session).list()

    def job_listing(self) -> list[JobListing]:
        """Every job by name, for a listing (name, schedule, zone, image, last status)."""
        with self.database.reading() as session:
            return JobRepository(session).listing()

    def set_job_enabled(self, name: str, enabled: bool) -> bool:
        """Whether anything changed; JobNotFoundError when there is no such job."""
        with self.database.session() as session:
            return JobRepository(session).set_enabled(name, enabled)

    def set_jobs_paused(self, pattern: str, paused: bool, actor: str) -> tuple[str, ...]:
        """The names paused (or resumed); NotFoundError when the glob matches no job."""
        with self.database.session() as session:
            return JobRepository(session).set_paused(pattern, paused, actor)

    def claim_start(self, name: str, now: datetime, window: timedelta) -> bool:
        with self.database.session() as session:
            return JobRepository(session).claim_start(name, now, window)

    def delete_job(self, name: str, *, force: bool = False) -> None:
        with self.database.session() as session:
            JobRepository(session).delete(name, force=force)

    def enabled_jobs(self) -> list[JobRecord]:
        with self.database.reading() as session:
            jobs = JobRepository(session).list()
            return [record for record in jobs if record.enabled and record.paused_at is None]

    def jobs_signature(self) -> tuple[object, ...]:
        with self.database.reading() as session:
            return JobRepository(session).signature()

    # --- runs: claiming, recording, finishing -----------------------------------------------

    def record_run(self, run: NewRun) -> RunRecord:
        """Insert a run; DuplicateFireError when its fire is already claimed."""
        with self.database.session() as session:
            return RunRepository(session).add(run)

    def run(self, run_id: int) -> RunRecord:
        with self.database.session() as session:
            return RunRepository(session).get(run_id)

    def runs(
        self,
        *,
        job: str | None = None,
        status: RunStatus | None = None,
        since: datetime | None = None,
        before: int | None = None,
        limit: int | None = 50,
    ) -> list[RunRecord]:
        """Newest first, without output; `before` pages on after that run's id."""
        with self.database.session() as session:
            return RunRepository(session).list(
                job=job, status=status, since=since, before=before, limit=limit
            )

    def recent_runs_by_job(self, since: datetime, per_job: int) -> dict[str, list[RunDot]]:
        with self.database.session() as session:
            return RunRepository(session).recent_by_job(since, per_job)

    def runs_in_window(self, start: datetime, limit: int) -> list[RunRecord]:
        with self.database.session() as session:
            return RunRepository(session).in_window(start, limit)

    def attempts(self, first_run_id: int) -> list[RunRecord]:
        with self.database.session() as session:
            return RunRepository(session).attempts(first_run_id)

    def prune_runs(self, older_than: datetime, *, dry_run: bool = False) -> int:
        with self.database.session() as session:
            return RunRepository(session).prune(older_than, dry_run=dry_run)

    def fire(self, job: str, scheduled_for: datetime, attempt: int = 1) -> RunRecord | None:
        with self.database.session() as session:
            return RunRepository(session).find_fire(job, scheduled_for, attempt)

    def last_fires(self) -> dict[str, datetime]:
        with self.database.session() as session:
            return RunRepository(session).last_fires()

    def last_successes(self) -> dict[str, datetime]:
        with self.database.session() as session:
            return RunRepository(session).last_successes()

    def unfinished_runs(self, job: str) -> list[RunRecord]:
        with self.database.session() as session:
            return RunRepository(session).unfinished(job)

    def set_container(
        self, run_id: int, container_id: str, image_digest: str | None, owner: str | None = None
    ) -> bool:
        with self.database.session() as session:
            return RunRepository(session).set_container(run_id, container_id, image_digest, owner)

    def mark_running(
        self,
        run_id: int,
        *,
        started_at: datetime,
        ports: dict[str, int],
        notify: StartedEvents | None = None,
    ) -> bool:
        """False when the run was cancelled meanwhile. `notify` gives the notifications
        of its start, queued in the same transaction."""
        with self.database.session() as session:
            runs = RunRepository(session)
            started = runs.mark_running(run_id, started_at=started_at, ports=ports)
            if started and notify is not None:
                NotificationRepository(session).add(
                    notify(runs.get(run_id)), started_at, NOTIFY_PATIENCE
                )
            return started

    def finish_run(
        self,
        run_id: int,
        *,
        status: RunStatus,
        finished_at: datetime,
        notify: EndEvents | None = None,
        chain: Chained | None = None,
        retry: Retry | None = None,
        owner: str | None = None,
        **fields: object,
    ) -> RunRecord:
        """End the run. `notify` gives the notifications of its end (seeing the run as
        recorded, and how the job's fire before it ended), `chain` the jobs its end
        starts, `retry` its next attempt; all are queued in the same transaction: a
        run's end, its notifications, its chained runs and its retry are written
        together or not at all (a failure whose retry was not written would tell no
        one, for its notification waits for the last attempt). With `owner`, nothing
        is written once another scheduler owns the run (its end is that one's to tell)."""
        with self.database.session() as session:
            runs = RunRepository(session)
            record = runs.finish(
                run_id,
                status=status,
                finished_at=finished_at,
                owner=owner,
                **fields,  # type: ignore[arg-type]
            )
            if owner is not None and record.owner not in (None, owner):
                return record
            if notify is not None:
                items = notify(record, runs.previous_final_status(record))
                NotificationRepository(session).add(items, finished_at, NOTIFY_PATIENCE)
            if chain is not None:
                for target in chain(record):
                    _queue_chained(session, record, target, finished_at)
            if retry is not None and (attempt := retry(record)) is not None:
                # An end recorded twice (a wedged end, then the exit) retries once.
                with contextlib.suppress(DuplicateFireError):
                    runs.add(attempt)
            return record

    def request_cancel(self, run_id: int, now: datetime) -> RunRecord:
        """Cancelled at once when it has no container; else asked to (its container is
        then to be stopped); RunFinishedError when it has ended."""
        with self.database.session() as session:
            return RunRepository(session).request_cancel(run_id, now)

    def end_cancelled(self, run_id: int, now: datetime) -> RunRecord:
        """A run asked to cancel, its container seen stopped: cancelled."""
        with self.database.session() as session:
            return RunRepository(session).end_cancelled(run_id, now)

    def cancel_requested(self, owner: str) -> list[RunRecord]:
        """The owner's runs asked to cancel whose containers have not stopped yet."""
        with self.database.reading() as session:
            return RunRepository(session).cancel_requested(owner)

    # --- runs: queued, owned, adopted -------------------------------------------------------

    def due_pending(self, now: datetime) -> list[RunRecord]:
        with self.database.reading() as session:
            return RunRepository(session).due_pending(now)

    def change_feed(self, check_seconds: float, fallback_seconds: float) -> ChangeFeed:
        """What tells the service that jobs, queued runs or the outbox may have changed."""
        database = self.database
        return feed_for(
            database.url,
            database.in_memory,
            check_seconds=check_seconds,
            fallback_seconds=fallback_seconds,
            connect_timeout=POSTGRES_CONNECT_TIMEOUT_S,
        )

    def next_wakeups(self) -> tuple[datetime | None, datetime | None]:
        """(earliest due_at of a queued run, latest time the outbox needs a look)."""
        with self.database.reading() as session:
            run_due, outbox = next_wakeup(session)
        return _aware(run_due), _aware(outbox)

    def runs_waiting(self, now: datetime) -> tuple[int, datetime | None]:
        with self.database.reading() as session:
            return RunRepository(session).waiting(now)

    def runs_ended_before(self, run_ids: Collection[int], before: datetime) -> list[RunRecord]:
        with self.database.reading() as session:
            return RunRepository(session).ended_before(run_ids, before)

    def claim_pending(self, run_id: int, owner: str, now: datetime) -> bool:
        with self.database.session() as session:
            return RunRepository(session).claim_pending(run_id, owner, now)

    def heartbeat(self, owner: str, run_ids: list[int], now: datetime) -> None:
        with self.database.session() as session:
            RunRepository(session).heartbeat(owner, run_ids, now)

    def adoption_candidates(
        self, owner: str, created_before: datetime
    ) -> tuple[list[RunRecord], list[int]]:
        """(unfinished runs of other owners, the ids of our unfinished runs recorded
        before `created_before`), read in one transaction."""
        with self.database.reading() as session:
            runs = RunRepository(session)
            return runs.owned_elsewhere(owner), runs.unfinished_ids_of(owner, created_before)

    def adopt(self, run: RunRecord, owner: str, now: datetime) -> bool:
        with self.database.session() as session:
            return RunRepository(session).adopt(run, owner, now)

    # --- port leases ------------------------------------------------------------------------

    def leases(self) -> list[PortLease]:
        with self.database.session() as session:
            return PortLeaseRepository(session).list()

    def leased_ports(self, protocol: str) -> set[int]:
        with self.database.session() as session:
            return PortLeaseRepository(session).leased_ports(protocol)

    def lease_holder(self, host_ip: str, port: int, protocol: str) -> PortLease | None:
        with self.database.session() as session:
            return PortLeaseRepository(session).holder(host_ip, port, protocol)

    def try_lease(
        self,
        *,
        host_ip: str,
        port: int,
        protocol: str,
        container_port: int,
        run_id: int,
        job: str,
        now: datetime,
        expires_at: datetime | None,
    ) -> bool:
        """True when the lease is ours (committed at once, so others see it)."""
        with self.database.session() as session:
            return PortLeaseRepository(session).try_lease(
                host_ip=host_ip,
                port=port,
                protocol=protocol,
                container_port=container_port,
                run_id=run_id,
                job=job,
                now=now,
                expires_at=expires_at,
            )

    def release_leases(self, run_id: int, port: int | None = None) -> int:
        with self.database.session() as session:
            return PortLeaseRepository(session).release(run_id, port)

    def release_stale_leases(self, now: datetime) -> int:
        with self.database.session() as session:
            return PortLeaseRepository(session).release_stale(now)

    # --- retention (orchestrator/service/retention.py drives these) -------------------------

    def history_job_names(self) -> list[str]:
        with self.database.reading() as session:
            return RetentionRepository(session).job_names()

    def count_prunable(self, job: str, keep: int | None, cutoff: datetime | None) -> int:
        with self.database.reading() as session:
            return RetentionRepository(session).count(job, keep, cutoff)

    def prune_batch(self, job: str, keep: int | None, cutoff: datetime | None, limit: int) -> int:
        """At most `limit` runs of `job` deleted: found in a read, deleted in one short
        write transaction (none when there is nothing to delete)."""
        with self.database.reading() as session:
            ids = RetentionRepository(session).batch_ids(job, keep, cutoff, limit)
        if not ids:
            return 0
        with self.database.session() as session:
            return RetentionRepository(session).delete_ids(job, ids)

    def count_prunable_audit(self, cutoff: datetime) -> int:
        with self.database.reading() as session:
            return RetentionRepository(session).count_audit(cutoff)

    def prune_audit_batch(self, cutoff: datetime, limit: int) -> int:
        with self.database.session() as session:
            return RetentionRepository(session).delete_audit_batch(cutoff, limit)

    def claim_maintenance(self, name: str, owner: str, now: datetime, until: datetime) -> bool:
        with self.database.session() as session:
            return RetentionRepository(session).claim_lease(name, owner, now, until)

    def release_maintenance(self, name: str, owner: str) -> None:
        with self.database.session() as session:
            RetentionRepository(session).release_lease(name, owner)

    # --- audit ------------------------------------------------------------------------------

    def audit(
        self, *, at: datetime, actor: str, action: str, target: str | None, result: str
    ) -> AuditEntry:
        with self.database.session() as session:
            return AuditRepository(session).add(
                at=at, actor=actor, action=action, target=target, result=result
            )

    def audit_entries(self, *, limit: int, before: int | None = None) -> list[AuditEntry]:
        with self.database.session() as session:
            return AuditRepository(session).list(limit=limit, before=before)

    # --- the database itself ----------------------------------------------------------------

    @property
    def display_url(self) -> str:
        """The database's URL without its password."""
        return self.database.display_url

    def revision(self) -> str | None:
        """The schema revision; SchemaOutOfDateError is not raised here."""
        return self.database.current_revision()

    def check_schema(self) -> None:
        """SchemaOutOfDateError unless the schema is at this code's head."""
        migrations.check_schema(self.database)

    def ping(self) -> None:
        """DatabaseUnavailableError when the database cannot be reached."""
        self.database.current_revision()

    # --- notifications (the outbox) --------------------------------------------------------

    def due_notifications(self, now: datetime, limit: int = 20) -> list[Notification]:
        with self.database.reading() as session:
            return NotificationRepository(session).due(now, limit)

    def claim_notification(
        self, notification_id: int, owner: str, now: datetime, until: datetime
    ) -> bool:
        with self.database.session() as session:
            return NotificationRepository(session).claim(notification_id, owner, now, until)

    def record_delivery(
        self,
        notification_id: int,
        *,
        answer: dict[str, object],
        delivered: bool,
        now: datetime,
        retry_at: datetime,
    ) -> Notification:
        with self.database.session() as session:
            return NotificationRepository(session).record_attempt(
                notification_id, answer=answer, delivered=delivered, now=now, retry_at=retry_at
            )

    def queue_notifications(self, items: list[NewNotification], now: datetime) -> int:
        with self.database.session() as session:
            return NotificationRepository(session).add(items, now, NOTIFY_PATIENCE)

    def notifications(
        self,
        *,
        job: str | None = None,
        status: DeliveryStatus | None = None,
        run_id: int | None = None,
        limit: int = 50,
    ) -> list[Notification]:
        with self.database.session() as session:
            return NotificationRepository(session).list(
                job=job, status=status, run_id=run_id, limit=limit
            )

    def notification_backlog(self) -> tuple[int, datetime | None]:
        with self.database.session() as session:
            return NotificationRepository(session).backlog()


def _aware(moment: object) -> datetime | None:
    """A time from a MIN(): SQLite gives it naive (or as text), in UTC."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    assert isinstance(moment, datetime)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _queue_chained(session: Session, parent: RunRecord, target: str, at: datetime) -> None:
    """A pending run of `target` started by `parent`'s end (a scheduler starts it as it
    does a queued run); a skipped one saying why when the target is gone or disabled."""
    reason = None
    image = None
    origin = f"chained from run {parent.id} of {parent.job}"
    try:
        job = JobRepository(session).get(target)
        image = job.spec.image
        if not job.enabled:
            reason = f"{origin}, but job {target!r} is disabled"
    except JobNotFoundError:
        reason = f"{origin}, but job {target!r} no longer exists"
    RunRepository(session).add_chained(
        NewRun(
            job=target,
            scheduled_for=at,
            trigger=RunTrigger.CHAIN,
            parent_run_id=parent.id,
            image=image,
            status=RunStatus.SKIPPED if reason else RunStatus.PENDING,
            finished_at=at if reason else None,
            error=reason,
        )
    )

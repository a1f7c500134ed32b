"""The notification outbox."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orchestrator.records import DeliveryStatus, NewNotification, Notification
from orchestrator.store.database import rowcount
from orchestrator.store.models import NotificationRow

# Each notification keeps the answers of its last attempts (the count is in `attempts`).
ANSWERS_KEPT = 20


_OUTBOX = cast(Table, NotificationRow.__table__)
# Polled by every scheduler twice a second, mostly to find nothing: a Core statement of
# ids, built once; the notifications are loaded only when some are due.
_DUE_IDS = (
    select(_OUTBOX.c.id)
    .where(
        _OUTBOX.c.status == DeliveryStatus.PENDING.value,
        _OUTBOX.c.next_attempt_at <= bindparam("now"),
        _OUTBOX.c.claimed_until.is_(None) | (_OUTBOX.c.claimed_until < bindparam("now")),
    )
    .order_by(_OUTBOX.c.next_attempt_at, _OUTBOX.c.id)
    .limit(bindparam("limit"))
)


def _record(row: NotificationRow) -> Notification:
    return Notification(
        id=row.id,
        run_id=row.run_id,
        job=row.job_name,
        event=row.event,
        url=row.url,
        secret_name=row.secret_name,
        payload=dict(row.payload),
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        answers=list(row.answers or []),
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        give_up_at=row.give_up_at,
        delivered_at=row.delivered_at,
        method=row.method,
    )


class NotificationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, items: list[NewNotification], now: datetime, keep_trying: timedelta) -> int:
        """Queue each; one already queued (same run, event and receiver) is left as it is."""
        added = 0
        for item in items:
            try:
                with self.session.begin_nested():
                    self.session.add(
                        NotificationRow(
                            run_id=item.run_id,
                            job_name=item.job,
                            event=item.event,
                            url=item.url,
                            method=item.method,
                            secret_name=item.secret_name,
                            payload=item.payload,
                            status=DeliveryStatus.PENDING.value,
                            attempts=0,
                            answers=[],
                            created_at=now,
                            next_attempt_at=now,
                            give_up_at=now + keep_trying,
                        )
                    )
                added += 1
            except IntegrityError:
                continue
        return added

    def due(self, now: datetime, limit: int) -> list[Notification]:
        """Pending notifications whose next attempt is due and that no live claim holds."""
        ids = list(self.session.scalars(_DUE_IDS, {"now": now, "limit": limit}))
        if not ids:
            return []
        query = (
            select(NotificationRow)
            .where(NotificationRow.id.in_(ids))
            .order_by(NotificationRow.next_attempt_at, NotificationRow.id)
        )
        return [_record(row) for row in self.session.scalars(query)]

    def claim(self, notification_id: int, owner: str, now: datetime, until: datetime) -> bool:
        """Take one for delivery; False when another scheduler holds it."""
        result = self.session.execute(
            update(NotificationRow)
            .where(
                NotificationRow.id == notification_id,
                NotificationRow.status == DeliveryStatus.PENDING.value,
                NotificationRow.claimed_until.is_(None) | (NotificationRow.claimed_until < now),
            )
            .values(owner=owner, claimed_until=until)
        )
        return rowcount(result) == 1

    def record_attempt(
        self,
        notification_id: int,
        *,
        answer: dict[str, object],
        delivered: bool,
        now: datetime,
        retry_at: datetime,
    ) -> Notification:
        """One attempt's answer; delivered, or due again at `retry_at`, or given up on
        when `retry_at` is past its time."""
        row = self.session.get(NotificationRow, notification_id)
        assert row is not None
        row.attempts += 1
        row.answers = [*(row.answers or []), answer][-ANSWERS_KEPT:]
        row.claimed_until = None
        if delivered:
            row.status = DeliveryStatus.DELIVERED.value
            row.delivered_at = now
        elif retry_at > row.give_up_at:
            row.status = DeliveryStatus.FAILED.value
        else:
            row.next_attempt_at = retry_at
        return _record(row)

    def list(
        self,
        *,
        job: str | None = None,
        status: DeliveryStatus | None = None,
        run_id: int | None = None,
        limit: int = 50,
    ) -> list[Notification]:
        query = select(NotificationRow).order_by(NotificationRow.id.desc()).limit(limit)
        if job is not None:
            query = query.where(NotificationRow.job_name == job)
        if status is not None:
            query = query.where(NotificationRow.status == status.value)
        if run_id is not None:
            query = query.where(NotificationRow.run_id == run_id)
        return [_record(row) for row in self.session.scalars(query)]

    def backlog(self) -> tuple[int, datetime | None]:
        """(pending notifications, when the oldest of them was queued)."""
        count, oldest = self.session.execute(
            select(func.count(), func.min(NotificationRow.created_at)).where(
                NotificationRow.status == DeliveryStatus.PENDING.value
            )
        ).one()
        return int(count or 0), oldest

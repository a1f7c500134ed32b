"""The notification outbox in the database: written with the run's end, kept when the
run is pruned (its payload is a snapshot), claimed by one scheduler at a time, retried
with backoff, given up when its time runs out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.policies import notify_events
from orchestrator.records import DeliveryStatus, NewRun, RunStatus, RunTrigger
from orchestrator.spec import parse_job
from orchestrator.store.database import Database
from orchestrator.store.facade import NOTIFY_PATIENCE, Store

JOB = parse_job(
    {
        "name": "told",
        "schedule": "@hourly",
        "image": "img",
        "notify": [{"webhook": "https://a.example/h"}, {"webhook": "https://b.example/h"}],
    }
)
THEN = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def finished_run(store: Store, status: RunStatus, at: datetime) -> int:
    run = store.record_run(NewRun(job="told", scheduled_for=at, trigger=RunTrigger.SCHEDULE))
    store.finish_run(run.id, status=status, finished_at=at, notify=notify_events.on_end(JOB))
    return run.id


def test_an_end_queues_its_notifications_and_pruning_the_run_keeps_them(
    database: Database,
) -> None:
    store = Store(database)
    run_id = finished_run(store, RunStatus.FAILED, THEN)
    finished_run(store, RunStatus.SUCCEEDED, THEN + timedelta(hours=1))  # the newest stays
    queued = store.notifications(job="told")
    assert sorted((n.url, n.event, n.run_id) for n in queued) == [
        ("https://a.example/h", "failed", run_id),
        ("https://b.example/h", "failed", run_id),
    ]
    assert store.prune_runs(THEN + timedelta(minutes=30)) == 1
    kept = store.notifications(job="told")
    assert len(kept) == 2 and all(n.payload["id"] == run_id for n in kept)
    assert len(store.due_notifications(datetime.now(UTC))) == 2  # still delivered


def test_the_same_end_recorded_twice_is_told_once(database: Database) -> None:
    store = Store(database)
    run = store.record_run(NewRun(job="told", scheduled_for=THEN, trigger=RunTrigger.SCHEDULE))
    for _ in range(2):  # e.g. a scheduler and an adopter both recording the end
        store.finish_run(
            run.id, status=RunStatus.LOST, finished_at=THEN, notify=notify_events.on_end(JOB)
        )
    assert len(store.notifications(job="told")) == 2  # one per receiver


def test_one_claim_at_a_time_then_backoff_then_given_up(database: Database) -> None:
    store = Store(database)
    finished_run(store, RunStatus.FAILED, THEN)
    now = datetime.now(UTC)
    first = store.due_notifications(now)[0]
    until = now + timedelta(seconds=60)
    assert store.claim_notification(first.id, "a", now, until)
    assert not store.claim_notification(first.id, "b", now, until)  # held by a
    assert first.id not in [n.id for n in store.due_notifications(now)]
    retry_at = now + timedelta(seconds=1)
    again = store.record_delivery(
        first.id, answer={"error": "refused"}, delivered=False, now=now, retry_at=retry_at
    )
    assert again.status is DeliveryStatus.PENDING and again.attempts == 1
    assert first.id not in [n.id for n in store.due_notifications(now)]
    assert first.id in [n.id for n in store.due_notifications(retry_at)]
    late = now + NOTIFY_PATIENCE + timedelta(hours=1)
    given_up = store.record_delivery(
        first.id, answer={"status": 500}, delivered=False, now=late, retry_at=late
    )
    assert given_up.status is DeliveryStatus.FAILED and given_up.attempts == 2
    assert [a for a in given_up.answers] == [{"error": "refused"}, {"status": 500}]
    assert store.notification_backlog()[0] == 1  # the other receiver's is still pending

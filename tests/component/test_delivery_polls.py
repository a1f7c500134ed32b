"""The outbox's workers read an idle outbox once per poll, not once per worker each."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.records import NewNotification, Notification
from orchestrator.service.delivery import DeliveryWorkers
from orchestrator.store import migrations
from orchestrator.store.database import Database
from orchestrator.store.facade import Store


class CountingStore(Store):
    reads = 0

    def due_notifications(self, now: datetime, limit: int = 20) -> list:  # type: ignore[type-arg]
        CountingStore.reads += 1
        return super().due_notifications(now, limit)


def test_an_idle_outbox_is_read_once_per_poll_whatever_the_workers(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'd.db'}")
    migrations.upgrade(database)
    stopping = threading.Event()
    workers = DeliveryWorkers(
        store=CountingStore(database),
        owner="me",
        secrets_dir=str(tmp_path),
        clock=lambda: datetime.now(UTC),
        stopping=stopping,
        workers=4,
        poll_seconds=0.1,
    )
    workers.start()
    time.sleep(2)
    stopping.set()
    # One read per 0.1 s in all: about 20 (each of the 4 workers polling: about 80).
    assert 10 <= CountingStore.reads <= 30, CountingStore.reads
    database.dispose()


def test_a_delivery_that_hangs_holds_one_worker_and_no_other_notification(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite:///{tmp_path / 'd.db'}")
    migrations.upgrade(database)
    store = Store(database)
    stopping, released = threading.Event(), threading.Event()
    delivered: list[int] = []
    workers = DeliveryWorkers(
        store=store,
        owner="me",
        secrets_dir=str(tmp_path),
        clock=lambda: datetime.now(UTC),
        stopping=stopping,
        workers=4,
        poll_seconds=0.1,
    )

    def deliver(item: Notification) -> None:
        if item.run_id == 1:
            released.wait(30)  # a receiver that does not answer
        delivered.append(item.run_id)

    workers._deliver = deliver  # type: ignore[method-assign]

    def queue(run_id: int) -> None:
        item = NewNotification(run_id, "j", "run.failed", "http://127.0.0.1:9/", {})
        store.queue_notifications([item], datetime.now(UTC))

    queue(1)
    workers.start()
    time.sleep(0.5)  # the hanging one is taken
    for run_id in (2, 3, 4, 5):
        queue(run_id)
    deadline = time.monotonic() + 5
    while len(delivered) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(delivered) == [2, 3, 4, 5]
    released.set()
    stopping.set()
    database.dispose()

"""Paging through the run history: newest first, no run repeated or skipped, also while
new runs come in and when many share one scheduled time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

from orchestrator.records import NewRun, RunStatus, RunTrigger
from orchestrator.store.database import Database
from orchestrator.store.facade import Store
from tests.acceptance.api.conftest import ApiService


def seed(database: Database, job: str, count: int, start: datetime) -> list[int]:
    """`count` finished runs; every fourth shares its time with the one before (retries),
    so the order needs the id as well as the time."""
    store = Store(database)
    ids = []
    for index in range(count):
        moment = start + timedelta(minutes=index - index % 4 // 3)
        attempt = 1 + (index % 4 == 3)
        run = store.record_run(
            NewRun(
                job=job,
                scheduled_for=moment,
                trigger=RunTrigger.SCHEDULE if attempt == 1 else RunTrigger.RETRY,
                attempt=attempt,
                status=RunStatus.SUCCEEDED,
                finished_at=moment,
            )
        )
        ids.append(run.id)
    return ids


def newest_first(store: Store, job: str) -> list[int]:
    return [run.id for run in store.runs(job=job, limit=None)]


def test_store_pages_cover_every_run_once(database: Database) -> None:
    store = Store(database)
    seed(database, "paged", 250, datetime(2026, 1, 1, tzinfo=UTC))
    expected = newest_first(store, "paged")
    seen: list[int] = []
    before = None
    while True:
        page = store.runs(job="paged", before=before, limit=33)
        seen += [run.id for run in page]
        if len(page) < 33:
            break
        before = page[-1].id
    assert seen == expected
    assert len(set(seen)) == 250


def test_api_pages_through_1000_runs_by_the_link_header(api: ApiService) -> None:
    job = "pages-1000"
    database = Database(api.database_url)
    try:
        seed(database, job, 1000, datetime(2026, 1, 1, tzinfo=UTC))
        expected = newest_first(Store(database), job)
        seen: list[int] = []
        path = f"/api/runs?job={job}&limit=37"
        pages = 0
        while path:
            response = api.get(path)
            assert response.status_code == 200, response.text
            seen += [run["id"] for run in response.json()]
            pages += 1
            if pages == 3:  # newer runs arrive meanwhile: they are not in this walk
                seed(database, job, 5, datetime(2027, 1, 1, tzinfo=UTC))
            link = response.headers.get("Link")
            if link is None:
                break
            target = urlparse(link.split(";")[0].strip("<>"))
            path = f"{target.path}?{target.query}"
        assert seen == expected, "a run was repeated, skipped or out of order"
        assert pages == 1000 // 37 + 1
        cli_page = api.get(f"/api/runs?job={job}&limit=10&before={expected[500]}").json()
        assert [run["id"] for run in cli_page] == expected[501:511]
    finally:
        database.dispose()

"""`jobs list` on SQLite reads through sqlite3 (orchestrator.store.sqlite_listing): the
same answer as the store's, and the store's whenever it cannot be sure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator.records import NewRun, RunStatus, RunTrigger
from orchestrator.spec import LoadedJob, parse_job
from orchestrator.store import migrations
from orchestrator.store.database import Database
from orchestrator.store.facade import Store
from orchestrator.store.jobs import JobRepository
from orchestrator.store.runs import RunRepository
from orchestrator.store.sqlite_listing import job_listing

T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'orchestrator.db'}"
    database = Database(url)
    migrations.upgrade(database)
    database.dispose()
    return url


def job(name: str, schedule: str = "@daily", **extra: object) -> LoadedJob:
    spec = parse_job({"name": name, "schedule": schedule, "image": "busybox", **extra})
    return LoadedJob(spec=spec, source=f"jobs/{name}.yaml")


def fill(url: str) -> None:
    """Jobs whose listing depends on every part of the query."""
    database = Database(url)
    with database.session() as session:
        JobRepository(session).apply(
            [
                job("b"),  # the listing is ordered by name
                job("a-x", "*/5 * * * *", timezone="Europe/Berlin"),
                job("a_x", "@every 90s", image="local/busybox:1"),
                job("quiet"),  # no run at all
                job("late", "0 3 * * *", timezone="America/New_York"),
            ]
        )
        JobRepository(session).set_enabled("quiet", False)
    with database.session() as session:
        runs = RunRepository(session)
        # "b": the latest fire is the one that counts, not the latest inserted row
        runs.add(NewRun("b", T0 + timedelta(hours=1), RunTrigger.SCHEDULE, RunStatus.SUCCEEDED))
        runs.add(NewRun("b", T0, RunTrigger.SCHEDULE, RunStatus.FAILED))
        # "late": two attempts of one fire, the later attempt (higher id) counts
        runs.add(NewRun("late", T0, RunTrigger.SCHEDULE, RunStatus.FAILED))
        runs.add(NewRun("late", T0, RunTrigger.RETRY, RunStatus.SUCCEEDED, attempt=2))
        runs.add(NewRun("a_x", T0, RunTrigger.MANUAL, RunStatus.RUNNING))
    database.dispose()


def store_listing(url: str) -> list[object]:
    database = Database(url)
    try:
        return list(Store(database).job_listing())
    finally:
        database.dispose()


def test_the_sqlite_listing_is_the_stores(sqlite_url: str) -> None:
    assert job_listing(sqlite_url) == store_listing(sqlite_url) == []
    fill(sqlite_url)
    quick = job_listing(sqlite_url)
    assert quick == store_listing(sqlite_url)
    assert quick is not None
    assert [(j.name, j.last_status, j.enabled) for j in quick] == [
        ("a-x", None, True),
        ("a_x", RunStatus.RUNNING, True),
        ("b", RunStatus.SUCCEEDED, True),
        ("late", RunStatus.SUCCEEDED, True),
        ("quiet", None, False),
    ]
    assert all(j.created_at.tzinfo is UTC for j in quick)


def test_anything_but_a_plain_sqlite_file_at_head_is_left_to_the_store(
    sqlite_url: str, tmp_path: Path
) -> None:
    fill(sqlite_url)
    path = sqlite_url.removeprefix("sqlite:///")
    for url in (
        "postgresql://orchestrator:secret@127.0.0.1:1/none",
        "sqlite://",
        "sqlite:///:memory:",
        f"{sqlite_url}?mode=ro",  # options: SQLAlchemy's reading of them, not ours
        f"sqlite+pysqlite:///{path}",
    ):
        assert job_listing(url) is None, url
    missing = tmp_path / "missing.db"
    assert job_listing(f"sqlite:///{missing}") is None
    assert not missing.exists()  # and made no file
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database" * 100)
    assert job_listing(f"sqlite:///{garbage}") is None
    database = Database(sqlite_url)
    migrations.downgrade(database, "0004")
    database.dispose()
    assert job_listing(sqlite_url) is None  # the store refuses it, and says why


def test_jobs_list_on_sqlite_imports_no_sqlalchemy(sqlite_url: str, tmp_path: Path) -> None:
    fill(sqlite_url)
    code = (
        "import sys\n"
        "from orchestrator.cli.entry import main\n"
        "sys.argv = ['orchestrator', 'jobs', 'list', '--json']\n"
        "main()\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'sqlalchemy', 'alembic', 'docker', 'apscheduler', 'yaml'}), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "ORCHESTRATOR_DATABASE_URL": sqlite_url},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stderr.strip() == "[]"
    listed = json.loads(result.stdout)
    assert [(j["name"], j["last_status"]) for j in listed] == [
        ("a-x", None),
        ("a_x", "running"),
        ("b", "succeeded"),
        ("late", "succeeded"),
        ("quiet", None),
    ]

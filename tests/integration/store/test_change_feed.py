"""Changes made by another process reach a running service promptly, on SQLite and on
PostgreSQL, with the old poll turned off (every poll interval an hour): only the change
feed (LISTEN/NOTIFY, PRAGMA data_version) can bring them. A lost LISTEN connection falls
back to a slow poll and is listened on again."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from orchestrator.engine.fake import FakeEngine
from orchestrator.hostpaths import ON_HOST
from orchestrator.runner import LaunchSettings
from orchestrator.service.scheduler import SchedulerService, ServiceSettings
from orchestrator.store.changes import CHANNEL, ChangeFeed
from orchestrator.store.database import Database, normalise_url
from orchestrator.store.facade import Store
from tests.acceptance.service.conftest import wait_for

IMAGE = "local/fake:1"
HOUR = 3600.0


def apply_in_another_process(url: str, tmp_path: Path, name: str) -> None:
    jobs = tmp_path / f"{name}.yaml"
    jobs.write_text(f'- {{name: {name}, schedule: "0 3 * * *", image: "{IMAGE}"}}\n')
    subprocess.run(
        [sys.executable, "-m", "orchestrator", "jobs", "apply", str(jobs)],
        env={"ORCHESTRATOR_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
    )


@pytest.fixture
def service(database_url: str) -> Iterator[SchedulerService]:
    engine = FakeEngine()
    engine.add_image(IMAGE)
    running = SchedulerService(
        Store(Database(database_url)),
        engine,
        ON_HOST,
        LaunchSettings(engine_socket=None),
        # No poll: an hour between looks at jobs and queued runs, and for the fallback.
        ServiceSettings(job_poll_seconds=HOUR, idle_poll_seconds=HOUR, adopt_check_seconds=HOUR),
    )
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    wait_for(lambda: running.changes.listening, 10, "the change feed to listen")
    yield running
    running.stop()
    thread.join(timeout=15)
    running.store.database.dispose()


def test_a_job_applied_by_another_process_reaches_the_service_without_a_poll(
    service: SchedulerService, database_url: str, tmp_path: Path
) -> None:
    apply_in_another_process(database_url, tmp_path, "told")
    # The apply's process has ended: the job is in the database, and only told.
    wait_for(lambda: service.timetable.spec("told") is not None, 5, "the job to be scheduled")


def test_a_run_queued_by_another_process_is_started_without_a_poll(
    service: SchedulerService, database_url: str, tmp_path: Path
) -> None:
    apply_in_another_process(database_url, tmp_path, "queued")
    wait_for(lambda: service.timetable.spec("queued") is not None, 5, "the job to be scheduled")
    subprocess.run(
        [sys.executable, "-m", "orchestrator", "jobs", "run", "queued", "--detach"],
        env={"ORCHESTRATOR_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
    )
    wait_for(
        lambda: any(run.status.finished for run in service.store.runs(job="queued", limit=5)),
        10,
        "the queued run to be started and end",
    )


def _listeners(url: str) -> int:
    """Terminate every backend LISTENing on our channel; how many there were."""
    admin = create_engine(normalise_url(url))
    try:
        with admin.begin() as connection:
            return len(
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE query = :listen AND datname = current_database() "
                        "AND pid <> pg_backend_pid()"
                    ),
                    {"listen": f"LISTEN {CHANNEL}"},
                ).all()
            )
    finally:
        admin.dispose()


@pytest.mark.postgres
def test_a_lost_listen_connection_falls_back_to_a_poll_and_listens_again(
    postgres_database_url: str, tmp_path: Path
) -> None:
    from orchestrator.store import migrations

    database = Database(postgres_database_url)
    migrations.upgrade(database)
    feed: ChangeFeed = Store(database).change_feed(check_seconds=0.1, fallback_seconds=0.5)
    feed.start()
    try:
        wait_for(lambda: feed.listening, 10, "the feed to listen")
        # The server drops the LISTEN connection (a restart, a proxy's idle cut).
        assert _listeners(postgres_database_url) == 1
        wait_for(lambda: feed.lost == 1, 10, "the feed to see its connection lost")
        wait_for(lambda: feed.listening, 10, "the feed to listen again")
        # Listening again, a change from another process is heard at once.
        seen = feed.generation()
        time.sleep(0.2)  # a bump of the reconnection is not taken for the change
        seen = feed.generation()
        apply_in_another_process(postgres_database_url, tmp_path, "after")
        assert feed.wait(seen, 5) != seen
    finally:
        feed.stop()
        database.dispose()


@pytest.mark.postgres
def test_a_feed_that_cannot_listen_polls_slowly_instead(postgres_database_url: str) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on: PostgreSQL is away
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    away = normalise_url(postgres_database_url).set(host="127.0.0.1", port=port)
    feed: ChangeFeed = Store(Database(away.render_as_string(hide_password=False))).change_feed(
        check_seconds=0.1, fallback_seconds=0.3
    )
    feed.start()
    try:
        seen = feed.generation()
        started = time.monotonic()
        # Each move of the generation is a look at the database by its readers.
        moved = feed.wait(feed.wait(seen, 5), 5)
        assert moved >= seen + 2 and not feed.listening
        assert time.monotonic() - started >= 0.5  # a poll, not a spin
    finally:
        feed.stop()

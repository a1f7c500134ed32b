"""A PostgreSQL outage under a running service: it rides it out and keeps every fire.
The test runs a PostgreSQL of its own (in a container), so the database that goes down
is the very one in the service's URL, on every host."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.store.database import Database
from tests.acceptance.service.conftest import all_runs, not_succeeded, wait_for, write_jobs

pytestmark = [pytest.mark.docker, pytest.mark.slow]
POSTGRES_IMAGE = "local/postgres:15"  # .ci/run builds it (scripts/postgres-image.sh)


@pytest.fixture
def own_postgres(docker_client: Any, test_label: dict[str, str]) -> Iterator[Any]:
    """A PostgreSQL server of this test's own, in a container on a loopback port."""
    with socket.socket() as probe:  # a fixed port: an ephemeral one changes on restart
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    container = docker_client.containers.run(
        POSTGRES_IMAGE,
        detach=True,
        environment={"POSTGRES_PASSWORD": "outage"},
        ports={"5432/tcp": ("127.0.0.1", port)},
        labels=test_label,
    )
    url = f"postgresql://postgres:outage@127.0.0.1:{port}/postgres"
    wait_for(lambda: answers(url), 60, "the test's PostgreSQL to accept connections")
    yield container, url
    container.remove(force=True)


def answers(url: str) -> bool:
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


@pytest.fixture
def database_url(own_postgres: tuple[Any, str]) -> str:  # the service fixtures use it
    return own_postgres[1]


@pytest.fixture
def postgres(database_url: str) -> Iterator[Database]:
    from orchestrator.store import migrations

    database = Database(database_url)
    migrations.upgrade(database)
    yield database
    database.dispose()


def test_a_postgres_outage_loses_no_fire(
    start_service: Any, postgres: Database, tmp_path: Path, own_postgres: tuple[Any, str]
) -> None:
    container, url = own_postgres
    jobs = write_jobs(
        tmp_path,
        '{name: tick, schedule: "@every 1s", image: IMAGE, command: ["true"], concurrency: allow}',
    )
    service = start_service("--jobs", str(jobs))
    wait_for(lambda: len(all_runs(postgres, "tick")) >= 3, 60, "the first fires")
    container.stop(timeout=10)
    assert not answers(url)  # the very database in the service's URL is down
    time.sleep(4)  # fires come due meanwhile
    container.start()
    wait_for(lambda: answers(url), 60, "PostgreSQL to come back")
    before = len(all_runs(postgres, "tick"))
    wait_for(lambda: len(all_runs(postgres, "tick")) >= before + 5, 60, "fires after the restart")
    assert service.process.poll() is None, service.output()[-2000:]
    time.sleep(2)
    assert service.terminate() == 0
    runs = all_runs(postgres, "tick")
    moments = [run.scheduled_for for run in runs]
    assert len(set(moments)) == len(moments)
    gaps = [(a, b) for a, b in itertools.pairwise(moments) if b - a != timedelta(seconds=1)]
    assert gaps == [], "fires were lost during the outage"
    assert not_succeeded(runs) == []
    assert "database unavailable" in service.output()  # it met the outage, and rode it out

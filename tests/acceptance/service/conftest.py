"""Run `orchestrator serve` as a real process against a test database and the real engine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.records import RunRecord
from orchestrator.store.database import Database
from orchestrator.store.runs import RunRepository

ROOT = Path(__file__).resolve().parents[3]


class Service:
    """One `orchestrator serve` process; stopped (SIGTERM, then SIGKILL) at teardown."""

    def __init__(self, env: dict[str, str], cwd: Path, log: Path, *args: str) -> None:
        self.log = log
        with log.open("ab") as sink:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "orchestrator", "serve", *args],
                env=env,
                cwd=cwd,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    def terminate(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def service_env(database_url: str, tmp_path: Path, test_label: dict[str, str]) -> dict[str, str]:
    ((key, value),) = test_label.items()
    return {
        **os.environ,
        "ORCHESTRATOR_DATABASE_URL": database_url,
        "ORCHESTRATOR_CONTAINER_LABELS": f"{key}={value}",
        "ORCHESTRATOR_HEALTH_FILE": str(tmp_path / "health.json"),
        "ORCHESTRATOR_LOG_LEVEL": "info",
    }


@pytest.fixture
def start_service(service_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Service:
        service = Service(
            {**service_env, **(env or {})}, tmp_path, tmp_path / f"serve-{len(started)}.log", *args
        )
        started.append(service)
        return service

    yield start
    for service in started:
        if service.process.poll() is None:
            service.kill()


def wait_for(condition: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def all_runs(database: Database, job: str | None = None) -> list[RunRecord]:
    with database.session() as session:
        return list(reversed(RunRepository(session).list(job=job, limit=None)))


@pytest.fixture
def postgres(postgres_database_url: str) -> Iterator[Database]:
    """A fresh, migrated PostgreSQL database (for tests that need PostgreSQL itself)."""
    from orchestrator.store import migrations
    from tests.conftest import _reset_postgres

    _reset_postgres(postgres_database_url)
    database = Database(postgres_database_url)
    migrations.upgrade(database)
    yield database
    database.dispose()


def not_succeeded(runs: list[RunRecord]) -> list[tuple[int, str, str | None]]:
    """Runs that did not succeed, but for those still starting when the services stopped
    (left in flight, to be reattached by the next start; on a loaded host a run of `true`
    can take several seconds from its fire to its end, so the last 15 s are excused)."""
    from datetime import timedelta

    from orchestrator.records import RunStatus

    if not runs:
        return []
    stopped = max(run.scheduled_for for run in runs)
    return [
        (run.id, run.status.value, run.error)
        for run in runs
        if run.status is not RunStatus.SUCCEEDED
        and not (
            run.status in (RunStatus.PENDING, RunStatus.RUNNING)
            and stopped - run.scheduled_for < timedelta(seconds=15)
        )
    ]


def write_jobs(tmp_path: Path, text: str) -> Path:
    """A jobs folder holding `text` (IMAGE stands for the test job image)."""
    from tests.support.engines import JOB_IMAGE

    folder = tmp_path / "jobs"
    folder.mkdir(exist_ok=True)
    (folder / "jobs.yaml").write_text(text.replace("IMAGE", JOB_IMAGE))
    return folder

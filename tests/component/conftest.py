"""The scheduler service in this process, on SQLite and the fake engine: its policies
tested in seconds, with neither Docker nor PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.engine.fake import FakeEngine
from orchestrator.hostpaths import ON_HOST
from orchestrator.records import RunRecord
from orchestrator.runner import LaunchSettings
from orchestrator.service.scheduler import SchedulerService, ServiceSettings
from orchestrator.spec import LoadedJob, parse_job
from orchestrator.store import migrations
from orchestrator.store.database import Database
from orchestrator.store.facade import Store
from orchestrator.store.jobs import JobRepository
from orchestrator.store.runs import RunRepository
from tests.acceptance.service.conftest import wait_for

IMAGE = "local/fake:1"


@dataclass
class Service:
    database: Database
    engine: FakeEngine
    service: SchedulerService
    thread: threading.Thread

    def apply(self, *jobs: dict[str, Any]) -> None:
        specs = [parse_job({"image": IMAGE, **job}) for job in jobs]
        with self.database.session() as session:
            JobRepository(session).apply([LoadedJob(spec, "test") for spec in specs])

    def runs(self, job: str) -> list[RunRecord]:
        with self.database.session() as session:
            return sorted(RunRepository(session).list(job=job, limit=10_000), key=lambda r: r.id)

    def wait_for(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        return wait_for(condition, timeout, what)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def start(
        health_file: Path | None = None,
        service_settings: dict[str, Any] | None = None,
        **launch: Any,
    ) -> Service:
        database = Database(f"sqlite:///{tmp_path / 'fast.db'}")
        migrations.upgrade(database)
        engine = FakeEngine()
        engine.add_image(IMAGE)
        service = SchedulerService(
            Store(database),
            engine,
            ON_HOST,
            LaunchSettings(engine_socket=None, **launch),
            ServiceSettings(
                job_poll_seconds=0.2,
                pending_poll_seconds=0.1,
                health_file=health_file,
                health_seconds=0.3,
                **(service_settings or {}),
            ),
        )
        thread = threading.Thread(target=service.run_forever, daemon=True)
        thread.start()
        running = Service(database, engine, service, thread)
        started.append(running)
        return running

    yield start
    for running in started:
        running.service.stop()
        running.thread.join(timeout=15)
        running.database.dispose()


@pytest.fixture
def released() -> Iterator[threading.Event]:
    """An event that wedged code waits on; set at the end whatever happens."""
    event = threading.Event()
    yield event
    event.set()


def wedge(released: threading.Event) -> Callable[..., Any]:
    def stuck(*args: Any, **kwargs: Any) -> Any:
        released.wait(60)
        return []

    return stuck

"""The schedule words in the service, on the fake engine and SQLite: `@manual` is never
fired, `at:` fires once across two schedulers and restarts, `jitter:` keeps one run per
fire, `run_on_start:` runs once for schedulers starting together, and a paused job is
not fired (nor caught up) until resumed."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from orchestrator.records import NewRun, RunStatus, RunTrigger
from orchestrator.spec import LoadedJob, parse_job
from orchestrator.store import migrations
from orchestrator.store.database import Database
from orchestrator.store.facade import Store
from orchestrator.store.jobs import JobRepository
from orchestrator.store.runs import RunRepository
from tests.component.conftest import IMAGE, Service

TICK = {"name": "tick", "schedule": "@every 1s", "concurrency": "allow"}


def _database(tmp_path: Path) -> Database:
    """The database the `serve` fixture's schedulers share, made before any starts."""
    database = Database(f"sqlite:///{tmp_path / 'fast.db'}")
    migrations.upgrade(database)
    return database


def _apply(database: Database, *jobs: dict[str, Any]) -> None:
    specs = [parse_job({"image": IMAGE, **job}) for job in jobs]
    with database.session() as session:
        JobRepository(session).apply([LoadedJob(spec, "test") for spec in specs])


def _ticks(running: Service, count: int) -> None:
    """Wait until the witness job has fired `count` more times: the timetable ran."""
    before = len(running.runs("tick"))
    running.wait_for(lambda: len(running.runs("tick")) >= before + count, 20, "ticks")


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def test_a_manual_job_is_never_fired_nor_caught_up(
    serve: Callable[..., Service], tmp_path: Path
) -> None:
    database = _database(tmp_path)
    _apply(database, TICK, {"name": "by-hand", "schedule": "@triggered"})
    # A fire in its history (from a timetable it had before): catch-up looks for fires
    # missed since then, or since it was applied; the service starts after a gap.
    with database.session() as session:
        old = RunRepository(session).add(
            NewRun(
                job="by-hand",
                scheduled_for=datetime.now(UTC) - timedelta(hours=1),
                trigger=RunTrigger.SCHEDULE,
                image=IMAGE,
            )
        )
    time.sleep(1.5)
    running = serve()
    _ticks(running, 3)
    assert [run.id for run in running.runs("by-hand")] == [old.id]


def test_a_jittered_one_shot_fires_once_under_two_schedulers_and_a_restart(
    serve: Callable[..., Service],
) -> None:
    first, second = serve(), serve()
    at = datetime.now(UTC) + timedelta(seconds=2)
    # jitter: each scheduler computes the delay; a random() one would be two fires.
    first.apply(TICK, {"name": "once", "at": _iso(at), "jitter": "2s"})
    runs = first.wait_for(
        lambda: [r for r in first.runs("once") if r.status is RunStatus.SUCCEEDED], 20, "the run"
    )
    assert at <= runs[0].scheduled_for < at + timedelta(seconds=2)
    _ticks(first, 2)
    _ticks(second, 1)
    for running in (first, second):
        running.service.stop()
        running.thread.join(timeout=15)
    third = serve()
    _ticks(third, 2)
    assert len(third.runs("once")) == 1


def test_a_one_shot_missed_while_down_is_caught_up_once(serve: Callable[..., Service]) -> None:
    first = serve()
    at = datetime.now(UTC) + timedelta(seconds=2)
    first.apply(TICK, {"name": "once", "at": _iso(at), "catchup": "latest"})
    first.service.stop()
    first.thread.join(timeout=15)
    time.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()) + 0.5)
    assert first.runs("once") == []  # nobody was up at its time
    second = serve()
    (run,) = second.wait_for(lambda: second.runs("once"), 20, "the caught-up run")
    assert (run.trigger, run.scheduled_for) == (RunTrigger.CATCHUP, at)
    second.service.stop()
    second.thread.join(timeout=15)
    third = serve()
    _ticks(third, 2)
    assert len(third.runs("once")) == 1


def test_run_on_start_runs_once_for_two_schedulers_starting_together(
    serve: Callable[..., Service], tmp_path: Path
) -> None:
    database = _database(tmp_path)
    _apply(database, TICK, {"name": "warmup", "schedule": "@manual", "run_on_start": True})
    quick = {"stale_after_seconds": 3.0}
    first, second = serve(service_settings=quick), serve(service_settings=quick)
    first.wait_for(lambda: first.runs("warmup"), 20, "the start run")
    _ticks(first, 2)
    _ticks(second, 1)
    assert len(first.runs("warmup")) == 1
    # A scheduler that starts after the window starts the service again.
    first.service.stop()
    first.thread.join(timeout=15)
    time.sleep(3.2)
    third = serve(service_settings=quick)
    third.wait_for(lambda: len(third.runs("warmup")) == 2, 20, "the second start's run")


def test_a_paused_job_is_not_fired_until_resumed_nor_caught_up(
    serve: Callable[..., Service], tmp_path: Path
) -> None:
    running = serve()
    running.apply(TICK, {"name": "paused", "schedule": "@every 1s", "catchup": "all"})
    running.wait_for(lambda: len(running.runs("paused")) >= 2, 20, "two fires")
    store = Store(running.database)
    assert store.set_jobs_paused("pa*", True, "cli:alice") == ("paused",)
    running.wait_for(lambda: running.service.timetable.spec("paused") is None, 10, "unscheduled")
    paused_at = datetime.now(UTC)
    # Applying its file again (even changed) does not undo a pause.
    running.apply(TICK, {"name": "paused", "schedule": "@every 1s", "description": "edited"})
    _ticks(running, 3)
    assert running.service.timetable.spec("paused") is None
    record = store.job("paused")
    assert (record.paused_by, record.spec.description) == ("cli:alice", "edited")
    assert store.set_jobs_paused("paused", False, "cli:alice") == ("paused",)
    resumed_at = datetime.now(UTC)
    running.wait_for(
        lambda: [r for r in running.runs("paused") if r.scheduled_for > resumed_at], 20, "a fire"
    )
    during = [
        r
        for r in running.runs("paused")
        if paused_at + timedelta(seconds=1) < r.scheduled_for < resumed_at
    ]
    assert during == []
    assert store.job("paused").paused_at is None

"""The service's scheduling policies, in process, on the fake engine and SQLite: every
fire one run, overlap (allow/forbid/replace), retries as linked attempts, and fires
that wait for an engine that went away. Seconds, not minutes; no Docker needed."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator.engine.fake import Script
from orchestrator.records import NewRun, RunStatus, RunTrigger
from orchestrator.store.runs import RunRepository
from tests.component.conftest import Service

EVERY_SECOND = {"schedule": "@every 1s"}


def test_every_fire_is_one_run_without_gaps(serve: Callable[..., Service]) -> None:
    running = serve()
    running.apply({"name": "tick", "concurrency": "allow", **EVERY_SECOND})
    runs = running.wait_for(
        lambda: (
            [r for r in running.runs("tick") if r.status is RunStatus.SUCCEEDED][4:]
            and running.runs("tick")
        ),
        15,
        "five succeeded runs",
    )
    fires = sorted({r.scheduled_for for r in runs if r.trigger is RunTrigger.SCHEDULE})
    assert len(fires) == len([r for r in runs if r.trigger is RunTrigger.SCHEDULE])  # one each
    gaps = [later - earlier for earlier, later in itertools.pairwise(fires)]
    assert gaps and all(gap == timedelta(seconds=1) for gap in gaps), gaps
    created = running.engine.calls.count("create")
    assert created == len([r for r in runs if r.container_id])  # one container per run


def test_forbid_records_the_overlapping_fire_as_skipped(serve: Callable[..., Service]) -> None:
    running = serve()
    running.engine.script("slow", Script(seconds=2.5))
    running.apply({"name": "slow", "concurrency": "forbid", **EVERY_SECOND})
    skipped = running.wait_for(
        lambda: [r for r in running.runs("slow") if r.status is RunStatus.SKIPPED],
        10,
        "a skipped fire",
    )
    first = running.runs("slow")[0]
    assert skipped[0].container_id is None
    assert skipped[0].error and f"run {first.id}" in skipped[0].error
    overlapping = [r for r in running.runs("slow") if r.status is RunStatus.RUNNING]
    assert len(overlapping) <= 1


def test_replace_stops_the_old_run_and_starts_the_new(serve: Callable[..., Service]) -> None:
    running = serve()
    running.engine.script("long", Script(seconds=30))
    running.apply({"name": "long", "concurrency": "replace", **EVERY_SECOND})
    cancelled = running.wait_for(
        lambda: [r for r in running.runs("long") if r.status is RunStatus.CANCELLED],
        10,
        "a replaced run",
    )
    old = cancelled[0]
    assert old.container_id is not None
    # Really stopped on the engine (in a thread of its own), not only marked: the fake
    # sees it end 30 s early.
    container = old.container_id
    running.wait_for(
        lambda: (state := running.engine.state(container)) is None or not state.running,
        5,
        "the replaced container to stop",
    )
    assert "stop" in running.engine.calls or "kill" in running.engine.calls
    running.wait_for(
        lambda: any(r.status is RunStatus.RUNNING and r.id > old.id for r in running.runs("long")),
        5,
        "the new run to be running",
    )


def test_a_failed_run_is_retried_as_linked_attempts(serve: Callable[..., Service]) -> None:
    running = serve()
    running.engine.script("flaky", Script(exit_code=1))
    running.apply(
        {
            "name": "flaky",
            "schedule": "0 0 1 1 *",
            "retries": {"count": 2, "backoff": "1s"},
        }
    )

    with running.database.session() as session:
        first = RunRepository(session).add(
            NewRun(job="flaky", scheduled_for=datetime.now(UTC), trigger=RunTrigger.SCHEDULE)
        )
    attempts = running.wait_for(
        lambda: (
            [r for r in running.runs("flaky") if r.status.finished][2:] and running.runs("flaky")
        ),
        15,
        "three finished attempts",
    )
    assert [r.attempt for r in attempts] == [1, 2, 3]
    assert all(r.status is RunStatus.FAILED and r.exit_code == 1 for r in attempts)
    assert [r.trigger for r in attempts] == [
        RunTrigger.SCHEDULE,
        RunTrigger.RETRY,
        RunTrigger.RETRY,
    ]
    assert all(r.first_run_id == first.id for r in attempts[1:])
    assert {r.scheduled_for for r in attempts} == {first.scheduled_for}
    time.sleep(1.5)
    assert len(running.runs("flaky")) == 3  # count: 2 means two more, no fourth


def test_fires_wait_for_an_engine_that_went_away(serve: Callable[..., Service]) -> None:
    running = serve(engine_patience_seconds=60)
    running.apply({"name": "tick", "concurrency": "allow", **EVERY_SECOND})
    running.wait_for(lambda: running.runs("tick"), 10, "the first run")
    running.engine.go_away()
    time.sleep(2.5)
    running.engine.come_back()
    after = running.wait_for(
        lambda: [r for r in running.runs("tick") if r.status.finished][5:] and running.runs("tick"),
        15,
        "runs after the engine came back",
    )
    failed = [r for r in after if r.status is RunStatus.FAILED]
    assert failed == [], [(r.id, r.error) for r in failed]
    fires = sorted(r.scheduled_for for r in after)
    gaps = [later - earlier for earlier, later in itertools.pairwise(fires)]
    assert all(gap == timedelta(seconds=1) for gap in gaps)  # none lost while it was away


def test_a_database_that_goes_away_while_the_service_starts_is_waited_for(
    serve: Callable[..., Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheduler started again during a restart of PostgreSQL (the chaos soak did
    that) waits for it instead of exiting."""
    from orchestrator.errors import DatabaseUnavailableError
    from orchestrator.store.facade import Store

    real = Store.adoption_candidates
    failures = iter([True, True])

    def away_twice(store: Store, *args: Any) -> Any:
        if next(failures, False):
            raise DatabaseUnavailableError("cannot reach database: the database is shutting down")
        return real(store, *args)

    monkeypatch.setattr(Store, "adoption_candidates", away_twice)
    running = serve()
    running.apply({"name": "tick", "concurrency": "allow", **EVERY_SECOND})
    running.wait_for(
        lambda: any(r.status is RunStatus.SUCCEEDED for r in running.runs("tick")),
        15,
        "a fire after the outage",
    )
    assert running.thread.is_alive()


def test_a_run_of_ours_no_thread_follows_is_taken_up_again_once_stale(
    serve: Callable[..., Service],
) -> None:
    """A run of ours that no thread follows (a write failed mid-outage) is taken up
    again; one recorded less than --adopt-after ago is not: it may be between its claim
    and its launch (under an overload, the whole backlog is)."""
    from tests.component.conftest import IMAGE

    running = serve(service_settings={"adopt_check_seconds": 3600})  # only when told
    running.apply({"name": "kept", "schedule": "@yearly"})
    owner = running.service.owner
    now = datetime.now(UTC)
    long_ago = now - timedelta(minutes=5)
    with running.database.session() as session:
        runs = RunRepository(session)
        stale = runs.add(
            NewRun("kept", long_ago, RunTrigger.MANUAL, image=IMAGE, owner=owner), now=long_ago
        )
        fresh = runs.add(NewRun("kept", now, RunTrigger.MANUAL, image=IMAGE, owner=owner))
    running.service.adoption.adopt_orphans(datetime.now(UTC))
    running.wait_for(
        lambda: running.runs("kept")[0].status is RunStatus.SUCCEEDED, 15, "the stale run"
    )
    by_id = {run.id: run for run in running.runs("kept")}
    assert by_id[stale.id].status is RunStatus.SUCCEEDED
    assert by_id[fresh.id].status is RunStatus.PENDING

"""A run's end is always written, its retry with it, and a cancel never lies: the service
in process, on the fake engine and SQLite, with the database write or the engine's stop
made to fail where a real one can (a value a column refuses, an engine that refuses the
stop of a paused container)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.exc import DataError

from orchestrator.engine.errors import EngineError
from orchestrator.engine.fake import Script
from orchestrator.errors import StopFailedError
from orchestrator.operations import cancel_run
from orchestrator.records import NewRun, RunStatus, RunTrigger
from orchestrator.store.facade import Store
from orchestrator.store.notifications import NotificationRepository
from orchestrator.store.runs import RunRepository
from tests.component.conftest import Service

EVERY_SECOND = {"schedule": "@every 1s"}


def _refused(what: str) -> DataError:
    """What the driver raises for a value its column cannot hold (PostgreSQL's words)."""
    return DataError("INSERT ...", {}, Exception(f"value too long for {what}"))


def test_an_end_that_cannot_be_written_is_written_short_and_forbid_goes_on(
    serve: Callable[..., Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attack: a job whose end the database refuses every time (here its ping, as a
    # column too narrow for it would). Before, the run stayed `running` for ever with
    # no container, and under `forbid` every later fire was skipped.
    add = NotificationRepository.add

    def refuse_end_pings(self: NotificationRepository, items: list[Any], *a: Any) -> int:
        if any(item.event != "started" for item in items):
            raise _refused("type character varying(2048)")
        return add(self, items, *a)

    monkeypatch.setattr(NotificationRepository, "add", refuse_end_pings)
    running = serve()
    running.engine.script("pinged", Script(exit_code=3, output=b"lost tail\n", seconds=0.2))
    running.apply(
        {"name": "pinged", "concurrency": "forbid", "ping": "http://127.0.0.1:9/x", **EVERY_SECOND}
    )
    ended = running.wait_for(
        lambda: (ended := [r for r in running.runs("pinged") if r.status.finished])[1:] and ended,
        15,
        "two runs ended, one after the other",
    )
    first = ended[0]
    assert (first.status, first.exit_code) == (RunStatus.FAILED, 3)
    assert first.error == (
        "could not record the full end: a value the database cannot hold: "
        "value too long for type character varying(2048) (exit status 3)"
    )
    assert Store(running.database).run(first.id).output is None  # a short end has none
    # Forbid saw the first run end: the second ran, it was not skipped behind it.
    assert ended[1].trigger is RunTrigger.SCHEDULE and ended[1].container_id


def test_a_retry_is_written_with_the_failure_it_retries(
    serve: Callable[..., Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attack: the retry's insert fails once (as a crash between two writes would
    # leave it). Before, the failure was committed first and its retry written after:
    # the retry was lost, and no one was told, for the failure's notification and
    # on_failure wait for the last attempt. Now both are one transaction: the whole
    # end rolls back and is written again, retry and all.
    add = RunRepository.add
    refused: list[int] = []

    def refuse_first_retry(self: RunRepository, run: Any, *a: Any) -> Any:
        if run.trigger is RunTrigger.RETRY and not refused:
            refused.append(run.attempt)
            # What is visible to another reader while this transaction is open: the
            # failure is not recorded without its retry.
            raise _refused("column first_run_id")
        return add(self, run, *a)

    monkeypatch.setattr(RunRepository, "add", refuse_first_retry)
    running = serve()
    running.engine.script("flaky", Script(exit_code=1, seconds=0.1))
    running.apply(
        {"name": "flaky", "schedule": "0 0 1 1 *", "retries": {"count": 1, "backoff": "1s"}}
    )
    with running.database.session() as session:  # a fire no scheduler owns yet
        first = RunRepository(session).add(NewRun("flaky", datetime.now(UTC), RunTrigger.SCHEDULE))
    attempts = running.wait_for(
        lambda: (
            [r for r in running.runs("flaky") if r.status.finished][1:] and running.runs("flaky")
        ),
        15,
        "the failure and its retry, both ended",
    )
    assert refused == [2]
    assert [(r.attempt, r.trigger, r.status) for r in attempts] == [
        (1, RunTrigger.SCHEDULE, RunStatus.FAILED),
        (2, RunTrigger.RETRY, RunStatus.FAILED),
    ]
    assert attempts[0].id == first.id and attempts[1].first_run_id == first.id
    assert attempts[0].error == "exit status 1"  # the full end, written the second time


def test_a_cancel_whose_stop_fails_keeps_the_run_and_forbid_starts_none_beside_it(
    serve: Callable[..., Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attack: cancel a run whose container the engine will not stop (a paused
    # container: Docker answers 409). Before, the run was recorded cancelled at once,
    # its container went on, and `forbid` started a second run beside it.
    running = serve()
    engine = running.engine
    running.engine.script("held", Script(seconds=60))
    running.apply({"name": "held", "concurrency": "forbid", **EVERY_SECOND})
    held = running.wait_for(
        lambda: next(
            (r for r in running.runs("held") if r.status is RunStatus.RUNNING and r.container_id),
            None,
        ),
        10,
        "a running run",
    )
    stop = engine.stop
    refusing = [True]

    def refused_stop(handle: str, grace_seconds: int = 10) -> None:
        if refusing[0]:
            raise EngineError("stopping the container: 409 container is paused")
        stop(handle, grace_seconds)

    monkeypatch.setattr(engine, "stop", refused_stop)
    store = Store(running.database)
    with pytest.raises(StopFailedError, match=f"run {held.id}: cancel asked, but its"):
        cancel_run(store, lambda: engine, held.id, 0, running.service.clock)
    asked = store.run(held.id)
    assert asked.status is RunStatus.RUNNING and asked.cancel_requested_at is not None
    skipped = running.wait_for(
        lambda: [
            r
            for r in running.runs("held")
            if r.status is RunStatus.SKIPPED and r.created_at > asked.cancel_requested_at
        ][1:],  # two or more
        10,
        "fires after the cancel, skipped",
    )
    assert all(f"run {held.id} of held still running" in (r.error or "") for r in skipped)
    assert [r.id for r in running.runs("held") if r.container_id] == [held.id]
    # The engine takes stops again: the service's retry stops it, and only then is it
    # recorded cancelled; the next fire runs.
    refusing[0] = False
    cancelled = running.wait_for(
        lambda: (r := store.run(held.id)).status is RunStatus.CANCELLED and r,
        15,
        "the service to stop it again",
    )
    assert engine.state(held.container_id) is None or not engine.is_running(held.container_id)
    assert cancelled.error == "cancelled"
    running.wait_for(
        lambda: any(r.id > held.id and r.container_id for r in running.runs("held")),
        10,
        "the next fire to run",
    )

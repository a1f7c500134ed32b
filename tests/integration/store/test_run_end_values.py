"""A run's end as both databases keep it: text no column refuses, read back the same on
SQLite and PostgreSQL; a cancel asked, kept until its container stops; a retry written
with the failure it retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.errors import RunFinishedError
from orchestrator.records import NewRun, RunRecord, RunStatus, RunTrigger
from orchestrator.store.database import Database
from orchestrator.store.facade import Store

T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)


def started(store: Store, job: str = "j") -> RunRecord:
    run = store.record_run(NewRun(job, T0, RunTrigger.SCHEDULE, owner="a:1:x"))
    store.set_container(run.id, "c0ffee", None, "a:1:x")
    assert store.mark_running(run.id, started_at=T0, ports={})
    return run


def test_output_and_errors_no_column_takes_are_kept_escaped_the_same_on_both(
    database: Database,
) -> None:
    # What a job can print (a NUL byte) and what Python can hold but no driver takes
    # (a lone surrogate, as os.fsdecode makes of a file name that is not UTF-8).
    store = Store(database)
    run = started(store)
    ended = store.finish_run(
        run.id,
        status=RunStatus.SUCCEEDED,
        finished_at=T0,
        exit_code=0,
        output="a\x00b \udc80 é\n",
        error="no \x00 here",
    )
    assert ended.status is RunStatus.SUCCEEDED
    assert store.run(run.id).output == "a\\x00b \\udc80 é\n"
    assert store.run(run.id).error == "no \\x00 here"


def test_a_cancel_asked_keeps_the_run_until_its_container_ends(database: Database) -> None:
    store = Store(database)
    queued = store.record_run(NewRun("j", T0 + timedelta(hours=1), RunTrigger.MANUAL))
    # No container yet: cancelled at once (whoever starts it finds it so).
    assert store.request_cancel(queued.id, T0).status is RunStatus.CANCELLED
    run = started(store)
    asked = store.request_cancel(run.id, T0 + timedelta(seconds=1))
    assert (asked.status, asked.cancel_requested_at) == (
        RunStatus.RUNNING,
        T0 + timedelta(seconds=1),
    )
    assert [r.id for r in store.unfinished_runs("j")] == [run.id]  # forbid still sees it
    assert [r.id for r in store.cancel_requested("a:1:x")] == [run.id]
    # Its container ends as a stopped one does (143): the run ends cancelled, with it.
    ended = store.finish_run(
        run.id,
        status=RunStatus.FAILED,
        finished_at=T0 + timedelta(seconds=3),
        exit_code=143,
        error="exit status 143",
        owner="a:1:x",
    )
    assert (ended.status, ended.exit_code, ended.error) == (RunStatus.CANCELLED, 143, "cancelled")
    with pytest.raises(RunFinishedError, match="has already ended"):
        store.request_cancel(run.id, T0)


def test_a_container_started_after_the_cancel_is_not_recorded_running(
    database: Database,
) -> None:
    store = Store(database)
    run = store.record_run(NewRun("j", T0, RunTrigger.SCHEDULE, owner="a:1:x"))
    store.set_container(run.id, "c0ffee", None, "a:1:x")  # created, not started yet
    assert store.request_cancel(run.id, T0).status is RunStatus.PENDING
    assert not store.mark_running(run.id, started_at=T0, ports={})  # its starter kills it


def test_a_failure_and_its_retry_are_written_together_or_not_at_all(
    database: Database,
) -> None:
    store = Store(database)
    run = started(store)

    def retry(record: RunRecord) -> NewRun:
        return NewRun("j", T0, RunTrigger.RETRY, attempt=2, first_run_id=record.id)

    def refused_retry(record: RunRecord) -> NewRun:
        return NewRun("j\udc80", T0, RunTrigger.RETRY, attempt=2)  # no driver takes it

    with pytest.raises(UnicodeEncodeError):
        store.finish_run(
            run.id, status=RunStatus.FAILED, finished_at=T0, retry=refused_retry, owner="a:1:x"
        )
    assert store.run(run.id).status is RunStatus.RUNNING  # the failure went with it
    store.finish_run(run.id, status=RunStatus.FAILED, finished_at=T0, retry=retry, owner="a:1:x")
    assert [(r.attempt, r.status) for r in store.attempts(run.id)] == [
        (1, RunStatus.FAILED),
        (2, RunStatus.PENDING),
    ]

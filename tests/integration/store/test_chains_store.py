"""Chains in the database (SQLite and PostgreSQL): a run's end queues the runs its
chains start in the same transaction, once per parent, keyed by the parent (two parents
ending in the same instant do not collide); the refusals at apply and delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.errors import InvalidSpecError, RefusedError
from orchestrator.policies import chains
from orchestrator.records import NewRun, RunStatus, RunTrigger
from orchestrator.spec import LoadedJob, parse_job
from orchestrator.store.database import Database
from orchestrator.store.facade import Store

THEN = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def job(name: str, **fields: object) -> LoadedJob:
    return LoadedJob(parse_job({"name": name, "schedule": "@hourly", "image": "i", **fields}), "t")


def finish(store: Store, name: str, status: RunStatus, at: datetime) -> int:
    spec = store.job(name).spec
    run = store.record_run(NewRun(job=name, scheduled_for=at, trigger=RunTrigger.SCHEDULE))
    store.finish_run(run.id, status=status, finished_at=at, chain=chains.on_end(spec))
    return run.id


def chained(store: Store, name: str) -> list[tuple[int | None, str, str | None]]:
    return sorted(
        (run.parent_run_id, run.status.value, run.error)
        for run in store.runs(job=name, limit=None)
        if run.trigger is RunTrigger.CHAIN
    )


def test_an_end_queues_the_chained_runs_once_keyed_by_their_parent(database: Database) -> None:
    store = Store(database)
    store.apply_jobs(
        [
            job("a", on_success=["b"], on_failure=["cleanup"]),
            job("a2", on_success=["b"]),
            job("b"),
            job("cleanup"),
        ]
    )
    ok = finish(store, "a", RunStatus.SUCCEEDED, THEN)
    # Another parent ends in the very same instant: its chained run of b is its own.
    other = finish(store, "a2", RunStatus.SUCCEEDED, THEN)
    bad = finish(store, "a", RunStatus.FAILED, THEN + timedelta(minutes=1))
    assert chained(store, "b") == [(ok, "pending", None), (other, "pending", None)]
    assert chained(store, "cleanup") == [(bad, "pending", None)]
    # The same end recorded again (an adopted run) starts nothing more.
    store.finish_run(
        ok, status=RunStatus.SUCCEEDED, finished_at=THEN, chain=chains.on_end(store.job("a").spec)
    )
    assert len(chained(store, "b")) == 2
    pending = [run for run in store.due_pending(datetime.now(UTC)) if run.job == "b"]
    assert {run.parent_run_id for run in pending} == {ok, other}


def test_a_failure_to_be_retried_starts_no_on_failure_chain_yet(database: Database) -> None:
    store = Store(database)
    store.apply_jobs(
        [
            job("flaky", on_failure=["cleanup"], retries={"count": 1, "backoff": "1s"}),
            job("cleanup"),
        ]
    )
    finish(store, "flaky", RunStatus.FAILED, THEN)  # attempt 1 of 2: not final
    assert chained(store, "cleanup") == []


def test_a_target_gone_or_disabled_gives_a_skipped_run_saying_why(database: Database) -> None:
    store = Store(database)
    store.apply_jobs([job("a", on_success=["b", "c"]), job("b"), job("c")])
    store.delete_job("b", force=True)
    store.set_job_enabled("c", False)
    parent = finish(store, "a", RunStatus.SUCCEEDED, THEN)
    assert chained(store, "b") == [
        (parent, "skipped", f"chained from run {parent} of a, but job 'b' no longer exists")
    ]
    assert chained(store, "c") == [
        (parent, "skipped", f"chained from run {parent} of a, but job 'c' is disabled")
    ]


@pytest.mark.parametrize(
    ("jobs", "says"),
    [
        (
            [job("a", on_success=["nobody"])],
            "job 'a': chains to job 'nobody', which does not exist",
        ),
        (
            [job("a", on_success=["b"]), job("b", on_failure=["c"]), job("c", on_success=["a"])],
            "jobs chain in a cycle: a -> b -> c -> a",
        ),
        ([job("a", on_failure=["a"])], "jobs chain in a cycle: a -> a"),
    ],
)
def test_apply_refuses_a_chain_to_nowhere_or_in_a_cycle_and_changes_nothing(
    database: Database, jobs: list[LoadedJob], says: str
) -> None:
    store = Store(database)
    store.apply_jobs([job("kept")])
    with pytest.raises(InvalidSpecError) as caught:
        store.apply_jobs(jobs)
    assert str(caught.value) == says
    assert [record.spec.name for record in store.jobs()] == ["kept"]


def test_a_cycle_through_jobs_already_there_is_refused(database: Database) -> None:
    store = Store(database)
    store.apply_jobs([job("a", on_success=["b"]), job("b")])
    with pytest.raises(InvalidSpecError, match="a -> b -> a"):
        store.apply_jobs([job("b", on_success=["a"])])
    # Pruning a target that another job keeps chaining to is refused too.
    with pytest.raises(InvalidSpecError, match="chains to job 'b', which does not exist"):
        store.apply_jobs([job("a", on_success=["b"])], prune=True)


def test_deleting_a_job_others_chain_to_is_refused_unless_forced(database: Database) -> None:
    store = Store(database)
    store.apply_jobs([job("a", on_success=["b"]), job("z", on_failure=["b"]), job("b")])
    with pytest.raises(RefusedError) as caught:
        store.delete_job("b")
    assert str(caught.value) == (
        "job 'b' is chained to by 'a', 'z': change those first, or delete it anyway with --force"
    )
    assert store.job("b")
    store.delete_job("b", force=True)
    assert [record.spec.name for record in store.jobs()] == ["a", "z"]
    # The chains left pointing at it do not stop other jobs from being applied.
    store.apply_jobs([job("other")])
    assert [record.spec.name for record in store.jobs()] == ["a", "other", "z"]

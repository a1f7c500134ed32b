"""Job definitions in SQLite and PostgreSQL: apply is an idempotent upsert."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.errors import JobNotFoundError
from orchestrator.records import NewRun, RunStatus, RunTrigger
from orchestrator.spec import LoadedJob, parse_job
from orchestrator.store.database import Database
from orchestrator.store.jobs import JobRepository
from orchestrator.store.runs import RunRepository


def job(name: str, schedule: str = "@daily", **extra: object) -> LoadedJob:
    spec = parse_job({"name": name, "schedule": schedule, "image": "busybox", **extra})
    return LoadedJob(spec=spec, source=f"jobs/{name}.yaml")


def apply(database: Database, jobs: list[LoadedJob], prune: bool = False):  # type: ignore[no-untyped-def]
    with database.session() as session:
        return JobRepository(session).apply(jobs, prune=prune)


def test_apply_creates_updates_and_leaves_unchanged(database: Database) -> None:
    first = apply(database, [job("a"), job("b")])
    assert (first.created, first.updated, first.unchanged) == (["a", "b"], [], [])
    again = apply(database, [job("a"), job("b")])
    assert (again.created, again.updated, again.unchanged) == ([], [], ["a", "b"])
    changed = apply(database, [job("a", "@hourly"), job("b")])
    assert (changed.created, changed.updated, changed.unchanged) == ([], ["a"], ["b"])
    with database.session() as session:
        record = JobRepository(session).get("a")
    assert record.spec.schedule == "@hourly"
    assert record.revision == 2
    assert record.updated_at > record.created_at


def test_prune_deletes_jobs_missing_from_the_batch_and_keeps_their_history(
    database: Database,
) -> None:
    apply(database, [job("a"), job("b")])
    with database.session() as session:
        RunRepository(session).add(
            NewRun(job="b", scheduled_for=datetime.now(UTC), trigger=RunTrigger.MANUAL)
        )
    result = apply(database, [job("a")], prune=True)
    assert result.deleted == ["b"]
    with database.session() as session:
        assert [r.name for r in JobRepository(session).list()] == ["a"]
        assert [r.job for r in RunRepository(session).list(job="b")] == ["b"]


def test_without_prune_nothing_is_deleted(database: Database) -> None:
    apply(database, [job("a"), job("b")])
    assert apply(database, [job("a")]).deleted == []
    with database.session() as session:
        assert JobRepository(session).count() == 2


def test_a_hand_disabled_job_stays_disabled_when_its_unchanged_file_is_applied(
    database: Database,
) -> None:
    apply(database, [job("a")])
    with database.session() as session:
        assert JobRepository(session).set_enabled("a", False)
        assert not JobRepository(session).set_enabled("a", False)
    apply(database, [job("a")])
    apply(database, [job("a", "@hourly")])  # a change elsewhere in the file
    with database.session() as session:
        assert JobRepository(session).get("a").enabled is False
    apply(database, [job("a", "@hourly", enabled=False)])
    apply(database, [job("a", "@hourly", enabled=True)])  # the file's own value changed
    with database.session() as session:
        assert JobRepository(session).get("a").enabled is True


def test_enable_disable_and_delete_bump_or_remove(database: Database) -> None:
    apply(database, [job("a")])
    with database.session() as session:
        JobRepository(session).set_enabled("a", False)
    with database.session() as session:
        record = JobRepository(session).get("a")
        assert (record.enabled, record.revision) == (False, 2)
        JobRepository(session).delete("a")
    with database.session() as session, pytest.raises(JobNotFoundError):
        JobRepository(session).get("a")
    with database.session() as session, pytest.raises(JobNotFoundError, match="no job named 'x'"):
        JobRepository(session).set_enabled("x", True)


def test_a_failed_batch_writes_nothing(database: Database) -> None:
    apply(database, [job("a")])
    with pytest.raises(RuntimeError), database.session() as session:
        JobRepository(session).apply([job("b"), job("a", "@hourly")])
        raise RuntimeError("something failed before the commit")
    with database.session() as session:
        names = [(r.name, r.spec.schedule) for r in JobRepository(session).list()]
    assert names == [("a", "@daily")]


def test_list_shows_the_last_status_of_each_job(database: Database) -> None:
    apply(database, [job("a"), job("b")])
    with database.session() as session:
        runs = RunRepository(session)
        runs.add(
            NewRun(
                "a", datetime(2026, 1, 1, tzinfo=UTC), RunTrigger.SCHEDULE, status=RunStatus.FAILED
            )
        )
        runs.add(
            NewRun(
                "a",
                datetime(2026, 1, 2, tzinfo=UTC),
                RunTrigger.SCHEDULE,
                status=RunStatus.SUCCEEDED,
            )
        )
    with database.session() as session:
        statuses = {r.name: r.last_status for r in JobRepository(session).list()}
    assert statuses == {"a": RunStatus.SUCCEEDED, "b": None}


def test_definitions_round_trip_through_the_database(database: Database) -> None:
    full = job(
        "full",
        "30 */15 * * * *",
        timezone="Europe/Berlin",
        volumes=["/srv:/out:ro", "v:/v"],
        ports=["8080", "9000:9000/udp"],
        environment={"A": 1},
        resources={"cpus": 0.25},
        retries={"count": 3, "backoff": "1m"},
        catchup={"policy": "all", "deadline": "2h"},
    )
    apply(database, [full])
    with database.session() as session:
        assert JobRepository(session).get("full").spec == full.spec

"""Run history: one run per fire, decided by the database; filters; pruning."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator.errors import DuplicateFireError, RunNotFoundError
from orchestrator.records import NewRun, RunStatus, RunTrigger
from orchestrator.store.database import Database
from orchestrator.store.runs import RunRepository

T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)


def add(database: Database, *runs: NewRun) -> list[int]:
    with database.session() as session:
        return [RunRepository(session).add(run).id for run in runs]


def test_one_fire_is_one_run(database: Database) -> None:
    add(database, NewRun("a", T0, RunTrigger.SCHEDULE))
    with pytest.raises(DuplicateFireError, match="already has a run"):
        add(database, NewRun("a", T0, RunTrigger.SCHEDULE))
    # retries are further attempts of the same fire; other jobs and fires are free
    add(
        database, NewRun("a", T0, RunTrigger.RETRY, attempt=2), NewRun("b", T0, RunTrigger.SCHEDULE)
    )
    with database.session() as session:
        assert len(RunRepository(session).list()) == 3


def test_a_duplicate_leaves_the_rest_of_the_unit_of_work_intact(database: Database) -> None:
    add(database, NewRun("a", T0, RunTrigger.SCHEDULE))
    with database.session() as session:
        runs = RunRepository(session)
        runs.add(NewRun("a", T0 + timedelta(hours=1), RunTrigger.SCHEDULE))
        with pytest.raises(DuplicateFireError):
            runs.add(NewRun("a", T0, RunTrigger.SCHEDULE))
        runs.add(NewRun("a", T0 + timedelta(hours=2), RunTrigger.SCHEDULE))
    with database.session() as session:
        assert len(RunRepository(session).list(job="a")) == 3


def test_racing_claims_of_one_fire_yield_exactly_one_run(database_url: str) -> None:
    winners: list[int] = []
    losers: list[str] = []
    barrier = threading.Barrier(6)

    def claim() -> None:
        database = Database(database_url)
        barrier.wait()
        try:
            winners.extend(add(database, NewRun("race", T0, RunTrigger.SCHEDULE)))
        except DuplicateFireError as error:
            losers.append(str(error))
        finally:
            database.dispose()

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert len(losers) == 5


def test_get_returns_the_output_and_list_filters(database: Database) -> None:
    ids = add(
        database,
        NewRun(
            "a", T0, RunTrigger.SCHEDULE, status=RunStatus.SUCCEEDED, exit_code=0, output="hello\n"
        ),
        NewRun(
            "a", T0 + timedelta(days=1), RunTrigger.SCHEDULE, status=RunStatus.FAILED, exit_code=3
        ),
        NewRun("b", T0 + timedelta(days=2), RunTrigger.MANUAL, status=RunStatus.FAILED),
    )
    with database.session() as session:
        runs = RunRepository(session)
        assert runs.get(ids[0]).output == "hello\n"
        assert [r.id for r in runs.list()] == list(reversed(ids))
        assert [r.id for r in runs.list(job="a")] == [ids[1], ids[0]]
        assert [r.id for r in runs.list(status=RunStatus.FAILED)] == [ids[2], ids[1]]
        assert [r.id for r in runs.list(since=T0 + timedelta(hours=1))] == [ids[2], ids[1]]
        assert [r.id for r in runs.list(limit=1)] == [ids[2]]
        assert all(r.output is None for r in runs.list())
        with pytest.raises(RunNotFoundError, match="no run with id 999"):
            runs.get(999)


def test_times_come_back_aware_in_utc(database: Database) -> None:
    berlin = T0.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    (run_id,) = add(database, NewRun("a", berlin, RunTrigger.SCHEDULE))
    with database.session() as session:
        run = RunRepository(session).get(run_id)
    assert run.scheduled_for == T0
    assert run.scheduled_for.tzinfo is not None and run.scheduled_for.utcoffset() == timedelta(0)


def test_prune_keeps_unfinished_runs_and_the_newest_run_of_each_job(database: Database) -> None:
    old = T0 - timedelta(days=60)
    add(
        database,
        NewRun("a", old, RunTrigger.SCHEDULE, status=RunStatus.SUCCEEDED),
        NewRun("a", old + timedelta(days=1), RunTrigger.SCHEDULE, status=RunStatus.FAILED),
        NewRun("a", old + timedelta(days=2), RunTrigger.SCHEDULE, status=RunStatus.RUNNING),
        NewRun("a", T0, RunTrigger.SCHEDULE, status=RunStatus.SUCCEEDED),
        NewRun("b", old, RunTrigger.SCHEDULE, status=RunStatus.SUCCEEDED),  # b's newest
    )
    cutoff = T0 - timedelta(days=30)
    with database.session() as session:
        assert RunRepository(session).prune(cutoff, dry_run=True) == 2
    with database.session() as session:
        assert RunRepository(session).prune(cutoff) == 2
    with database.session() as session:
        left = [(r.job, r.status) for r in RunRepository(session).list()]
        assert RunRepository(session).prune(cutoff) == 0
    assert left == [
        ("a", RunStatus.SUCCEEDED),
        ("a", RunStatus.RUNNING),
        ("b", RunStatus.SUCCEEDED),
    ]


def test_pruning_a_first_attempt_unlinks_the_retry_that_stays(database: Database) -> None:
    old = T0 - timedelta(days=60)
    (first,) = add(database, NewRun("a", old, RunTrigger.SCHEDULE, status=RunStatus.FAILED))
    (retry,) = add(
        database,
        NewRun(
            "a", old, RunTrigger.RETRY, attempt=2, first_run_id=first, status=RunStatus.SUCCEEDED
        ),
    )
    with database.session() as session:
        assert RunRepository(session).prune(T0 - timedelta(days=30)) == 1
    with database.session() as session:
        (left,) = RunRepository(session).list()
    assert (left.id, left.attempt, left.first_run_id) == (retry, 2, None)


def test_an_adopted_run_is_fenced_from_its_former_owner(database: Database) -> None:
    """A scheduler that only looked dead (frozen, cut off) wakes to a run adopted from it:
    it may neither record a container for it nor end it; the adopter may."""
    (run_id,) = add(database, NewRun("j", T0, RunTrigger.SCHEDULE, owner="a:1:x"))
    with database.session() as session:
        runs = RunRepository(session)
        assert runs.adopt(runs.get(run_id), "b:2:y", T0)
        assert runs.set_container(run_id, "c-of-a", None, owner="a:1:x") is False
        ended = runs.finish(run_id, status=RunStatus.FAILED, finished_at=T0, owner="a:1:x")
        assert (ended.status, ended.container_id, ended.owner) == (
            RunStatus.PENDING,
            None,
            "b:2:y",
        )
        assert runs.set_container(run_id, "c-of-b", None, owner="b:2:y") is True
        ended = runs.finish(
            run_id, status=RunStatus.SUCCEEDED, finished_at=T0, exit_code=0, owner="b:2:y"
        )
        assert (ended.status, ended.container_id) == (RunStatus.SUCCEEDED, "c-of-b")
        # Its former owner cannot fill in an exit code afterwards either.
        runs.finish(run_id, status=RunStatus.FAILED, finished_at=T0, exit_code=9, owner="a:1:x")
        assert runs.get(run_id).exit_code == 0


def test_a_unit_of_work_that_only_reads_never_makes_a_write_wait(database_url: str) -> None:
    # The service's pollers read (due runs, due notifications, the jobs' signature) while
    # launches write; on SQLite a read holding the write lock made each launch wait.
    reader, writer = Database(database_url), Database(database_url)
    wrote = threading.Event()

    def write() -> None:
        add(writer, NewRun("w", T0, RunTrigger.SCHEDULE))
        wrote.set()

    with reader.reading() as session:
        assert RunRepository(session).list(limit=None) == []
        thread = threading.Thread(target=write)
        thread.start()
        assert wrote.wait(5), "the write waited for the reading unit of work to end"
    thread.join()
    with reader.reading() as session:
        assert [run.job for run in RunRepository(session).list(limit=None)] == ["w"]
    reader.dispose()
    writer.dispose()


def test_the_strip_of_recent_runs_is_each_jobs_newest_since(database: Database) -> None:
    from orchestrator.spec import LoadedJob, parse_job
    from orchestrator.store.jobs import JobRepository

    with database.session() as session:
        JobRepository(session).apply(
            [
                LoadedJob(parse_job({"name": n, "schedule": "@hourly", "image": "b"}), n)
                for n in ("a", "b", "quiet")
            ]
        )
    since = T0 + timedelta(hours=3)
    add(database, *(NewRun("a", T0 + timedelta(hours=h), RunTrigger.SCHEDULE) for h in range(15)))
    b_first, b_retry = add(
        database,
        NewRun("b", since, RunTrigger.SCHEDULE, RunStatus.FAILED),
        NewRun("b", since, RunTrigger.RETRY, RunStatus.SUCCEEDED, attempt=2),
    )
    add(database, NewRun("gone", since, RunTrigger.SCHEDULE))  # its job was deleted
    with database.session() as session:
        strips = RunRepository(session).recent_by_job(since, 10)
    assert sorted(strips) == ["a", "b"]
    assert [dot.scheduled_for for dot in strips["a"]] == [
        T0 + timedelta(hours=h) for h in range(14, 4, -1)
    ]
    assert [(dot.id, dot.status) for dot in strips["b"]] == [
        (b_retry, RunStatus.SUCCEEDED),
        (b_first, RunStatus.FAILED),
    ]


def test_the_strip_of_recent_runs_reads_no_run_it_does_not_show(tmp_path: Path) -> None:
    # Through the (job, scheduled_for) index for each job: ranking every run of the
    # window let SQLite scan them all (300 ms at 100,000 runs; 4 ms now).
    from orchestrator.store import migrations
    from orchestrator.store.runs import recent_by_job_query

    database = Database(f"sqlite:///{tmp_path / 'plan.db'}")
    migrations.upgrade(database)
    with database.connect() as connection:
        query = recent_by_job_query(T0, 10, "sqlite")
        compiled = query.compile(dialect=connection.dialect)
        values = [compiled.params[name] for name in compiled.positiontup or ()]
        values = [
            v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v for v in values
        ]
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", tuple(values)).all()
    database.dispose()
    details = [row[-1] for row in plan]
    assert not [d for d in details if d.startswith("SCAN runs")], details
    assert any(d.startswith("SEARCH runs") and "scheduled_for" in d for d in details), details


def test_due_pending_runs_are_the_unowned_ones_whose_time_has_come(database: Database) -> None:
    """What a scheduler's poll starts: pending, no owner, no due time or one that has
    come; oldest first, at most `limit`."""
    later = T0 + timedelta(minutes=5)
    ids = add(
        database,
        NewRun("a", T0, RunTrigger.MANUAL),
        NewRun("a", T0, RunTrigger.RETRY, attempt=2, due_at=later),
        NewRun("b", T0, RunTrigger.MANUAL, owner="another"),
        NewRun("c", T0, RunTrigger.MANUAL, status=RunStatus.SUCCEEDED),
        NewRun("d", T0, RunTrigger.RETRY, attempt=2, due_at=T0),
        NewRun("e", T0, RunTrigger.MANUAL),
    )
    with database.reading() as session:
        runs = RunRepository(session)
        assert [run.id for run in runs.due_pending(T0)] == [ids[0], ids[4], ids[5]]
        assert [run.id for run in runs.due_pending(later)] == [ids[0], ids[1], ids[4], ids[5]]
        assert [run.id for run in runs.due_pending(later, limit=2)] == [ids[0], ids[1]]
        assert runs.due_pending(later)[1].due_at == later  # whole records

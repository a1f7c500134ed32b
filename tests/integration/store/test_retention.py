"""Retention on SQLite and PostgreSQL, each test the prune that would lose a run it must
keep: the newest, the last scheduled fire, a chain parent, an unfinished run; and two
schedulers pruning at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.policies.retention import Retention, RetentionDefaults
from orchestrator.records import NewRun, RunStatus, RunTrigger
from orchestrator.service.retention import HistoryPruner, LeaseHeldError
from orchestrator.store.database import Database
from orchestrator.store.facade import Store
from orchestrator.store.runs import RunRepository

NOW = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=60)
MONTH = RetentionDefaults(history=Retention(max_age=timedelta(days=30)))


def add(database: Database, *runs: NewRun) -> list[int]:
    with database.session() as session:
        return [RunRepository(session).add(run).id for run in runs]


def done(
    job: str, at: datetime, trigger: RunTrigger = RunTrigger.SCHEDULE, **more: object
) -> NewRun:
    return NewRun(job, at, trigger, status=RunStatus.SUCCEEDED, **more)  # type: ignore[arg-type]


def pruner(
    database: Database, defaults: RetentionDefaults = MONTH, owner: str = "a"
) -> HistoryPruner:
    return HistoryPruner(Store(database), defaults, owner, clock=lambda: NOW, pause_seconds=0)


def left(database: Database) -> set[int]:
    with database.session() as session:
        return {run.id for run in RunRepository(session).list(limit=None)}


def test_without_any_setting_an_upgrade_prunes_nothing(database: Database) -> None:
    ids = add(database, *(done("a", OLD + timedelta(hours=h)) for h in range(5)))
    result = pruner(database, RetentionDefaults()).prune()
    assert (result.total_runs, left(database)) == (0, set(ids))


def test_a_max_age_older_than_every_run_keeps_the_newest(database: Database) -> None:
    # manual runs only: no scheduled fire protects the newest one
    ids = add(database, *(done("a", OLD + timedelta(hours=h), RunTrigger.MANUAL) for h in range(5)))
    assert pruner(database).plan().runs == {"a": 4}
    assert pruner(database).prune().runs == {"a": 4}
    assert left(database) == {ids[-1]}


def test_keep_n_keeps_the_newest_n_in_small_batches(database: Database) -> None:
    ids = add(database, *(done("a", NOW - timedelta(hours=h)) for h in range(10)))
    keep3 = RetentionDefaults(history=Retention(keep=3))
    cut = HistoryPruner(Store(database), keep3, "a", clock=lambda: NOW, batch=2, pause_seconds=0)
    assert cut.prune().runs == {"a": 7}
    assert left(database) == set(ids[:3])


def test_the_last_scheduled_fire_stays_behind_newer_manual_runs_and_retries(
    database: Database,
) -> None:
    (fire,) = add(database, NewRun("a", OLD, RunTrigger.SCHEDULE, status=RunStatus.FAILED))
    later = add(
        database,
        done("a", OLD, RunTrigger.RETRY, attempt=2, first_run_id=fire),
        done("a", OLD + timedelta(days=1), RunTrigger.MANUAL),
    )
    pruner(database).prune()
    # catch-up after downtime starts from this fire; without it the job would look new
    assert Store(database).last_fires() == {"a": OLD}
    assert left(database) == {fire, later[1]}


def test_a_chain_parent_stays_while_the_run_it_started_does(database: Database) -> None:
    (parent,) = add(database, done("a", OLD))
    (child,) = add(database, done("b", OLD, RunTrigger.CHAIN, parent_run_id=parent))
    (newest,) = add(database, done("a", OLD + timedelta(days=1)))
    # b keeps everything; a prunes what is older than a month
    cut = pruner(database)
    rules = {"a": Retention(max_age=timedelta(days=30)), "b": Retention()}
    assert cut.prune(rules).total_runs == 0
    assert left(database) == {parent, child, newest}
    with database.session() as session:
        assert RunRepository(session).get(child).parent_run_id == parent
    # once the child has gone (b keeps its newest run only), the parent goes too
    (b_newest,) = add(database, done("b", NOW))
    both = {"a": Retention(max_age=timedelta(days=30)), "b": Retention(keep=1)}
    cut.prune(both)
    cut.prune(both)
    assert left(database) == {newest, b_newest}


def test_unfinished_runs_stay_however_old(database: Database) -> None:
    ids = add(
        database,
        NewRun("a", OLD, RunTrigger.SCHEDULE, status=RunStatus.RUNNING, owner="x:1:y"),
        NewRun("a", OLD + timedelta(hours=1), RunTrigger.MANUAL, status=RunStatus.PENDING),
        done("a", OLD + timedelta(hours=2)),
        done("a", NOW),
    )
    pruner(database, RetentionDefaults(history=Retention(keep=1))).prune()
    assert left(database) == {ids[0], ids[1], ids[3]}


def test_a_second_scheduler_does_not_prune_while_the_first_holds_the_lease(
    database: Database,
) -> None:
    ids = add(database, *(done("a", OLD + timedelta(hours=h)) for h in range(5)))
    store = Store(database)
    assert store.claim_maintenance("retention", "a", NOW, NOW + timedelta(minutes=5))
    with pytest.raises(LeaseHeldError, match="another scheduler is pruning"):
        pruner(database, owner="b").prune()
    assert left(database) == set(ids)
    # a holder that died: its lease runs out and the other takes over
    later = HistoryPruner(
        store, MONTH, "b", clock=lambda: NOW + timedelta(minutes=6), pause_seconds=0
    )
    assert later.prune().runs == {"a": 4}


def test_two_schedulers_pruning_at_once_never_share_the_work(database: Database) -> None:
    add(database, *(done(f"j{j}", OLD + timedelta(minutes=m)) for j in range(4) for m in range(60)))
    deleted: dict[str, int] = {}
    start = threading.Barrier(2)

    def prune(owner: str) -> None:
        cut = HistoryPruner(
            Store(database), MONTH, owner, clock=lambda: NOW, batch=10, pause_seconds=0.01
        )
        start.wait()
        try:
            deleted[owner] = cut.prune().total_runs
        except LeaseHeldError:
            deleted[owner] = 0

    threads = [threading.Thread(target=prune, args=(owner,)) for owner in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # one of them did all of it (the other found the lease held, or nothing left)
    assert sorted(deleted.values()) == [0, 4 * 59]


def test_the_audit_log_is_kept_unless_its_own_setting_is_set(database: Database) -> None:
    store = Store(database)
    store.audit(at=OLD, actor="cli:x", action="jobs.apply", target=None, result="ok")
    store.audit(at=NOW, actor="cli:x", action="jobs.apply", target=None, result="ok")
    assert pruner(database).prune().audit == 0
    assert len(store.audit_entries(limit=10)) == 2
    audit = RetentionDefaults(audit_max_age=timedelta(days=30))
    assert pruner(database, audit).prune().audit == 1
    assert [entry.at for entry in store.audit_entries(limit=10)] == [NOW]

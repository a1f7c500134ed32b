"""Chains run by the service (fake engine): a success starts on_success, a final failure
on_failure, each chained run recorded with its parent and obeying its job's policy."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from orchestrator.records import NewRun, RunRecord, RunStatus, RunTrigger
from orchestrator.store.facade import Store
from tests.component.conftest import IMAGE, Service

Serve = Callable[..., Service]


def run_now(service: Service, job: str, trigger: RunTrigger = RunTrigger.MANUAL) -> RunRecord:
    return Store(service.database).record_run(
        NewRun(job=job, scheduled_for=datetime.now(UTC), trigger=trigger, image=IMAGE)
    )


def ended_chain(service: Service, job: str) -> RunRecord:
    return service.wait_for(
        lambda: next(
            (
                run
                for run in service.runs(job)
                if run.trigger is RunTrigger.CHAIN and run.status.finished
            ),
            None,
        ),
        20,
        f"a chained run of {job} to end",
    )


def test_a_success_starts_on_success_and_a_final_failure_on_failure(serve: Serve) -> None:
    service = serve()
    service.apply(
        {"name": "extract", "schedule": "@yearly", "on_success": ["load"]},
        {"name": "load", "schedule": "@yearly"},
        {
            "name": "flaky",
            "schedule": "@yearly",
            "on_failure": ["cleanup"],
            "on_success": ["load"],
            "retries": {"count": 1, "backoff": "1s"},
        },
        {"name": "cleanup", "schedule": "@yearly"},
    )
    service.engine.script("flaky", exit_code=3)
    parent = run_now(service, "extract")
    child = ended_chain(service, "load")
    assert child.status is RunStatus.SUCCEEDED and child.parent_run_id == parent.id
    first = run_now(service, "flaky", RunTrigger.SCHEDULE)  # retried (a manual run is not)
    cleanup = ended_chain(service, "cleanup")
    attempts = service.runs("flaky")
    # The cleanup follows the final attempt (the retry), not the first failure.
    assert [run.attempt for run in attempts] == [1, 2]
    assert cleanup.parent_run_id == attempts[1].id != first.id
    assert cleanup.status is RunStatus.SUCCEEDED
    assert [run.trigger for run in service.runs("load")] == [RunTrigger.CHAIN]


def test_a_chained_run_obeys_its_jobs_concurrency_policy(serve: Serve) -> None:
    service = serve()
    service.apply(
        {"name": "parent", "schedule": "@yearly", "on_success": ["single"]},
        {"name": "single", "schedule": "@yearly", "concurrency": "forbid"},
    )
    service.engine.script("single", seconds=5)
    busy = run_now(service, "single")
    service.wait_for(
        lambda: Store(service.database).run(busy.id).status is RunStatus.RUNNING,
        10,
        "the first run of single to be running",
    )
    run_now(service, "parent")
    skipped = ended_chain(service, "single")
    assert skipped.status is RunStatus.SKIPPED
    assert f"run {busy.id} of single still running" in (skipped.error or "")

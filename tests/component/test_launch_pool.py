"""Overload on the fake engine: launches bounded by the pool, in order of due time,
timed-out calls reconciled instead of repeated, start deadlines, saturation told."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator import shapes
from orchestrator.cli.doctor import _launches_line
from orchestrator.engine import ContainerSpec
from orchestrator.hostpaths import ON_HOST
from orchestrator.operations import Backends
from orchestrator.operations.doctor import launch_report
from orchestrator.records import NewRun, RunRecord, RunStatus, RunTrigger
from orchestrator.runner import LaunchSettings
from orchestrator.store.facade import Store
from tests.component.conftest import IMAGE, Service

Serve = Callable[..., Service]
FINAL = {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.SKIPPED, RunStatus.LOST}


def queue(service: Service, job: str, count: int) -> list[RunRecord]:
    """Runs queued as `jobs run --detach` queues them (pending, no owner)."""
    store = Store(service.database)
    now = datetime.now(UTC)
    return [
        store.record_run(
            NewRun(
                job=job,
                scheduled_for=now + timedelta(microseconds=index),
                trigger=RunTrigger.MANUAL,
                image=IMAGE,
            )
        )
        for index in range(count)
    ]


def ended(service: Service, job: str, count: int, timeout: float) -> list[RunRecord]:
    return service.wait_for(
        lambda: (
            (runs := service.runs(job))
            and len(runs) >= count
            and all(run.status in FINAL for run in runs)
            and runs
        ),
        timeout,
        f"{count} runs of {job} to end",
    )


def test_engine_calls_in_flight_never_exceed_the_pool_and_threads_stay_bounded(
    serve: Serve,
) -> None:
    service = serve(max_parallel_launches=3, service_settings={"max_running": 5})
    service.apply({"name": "busy", "schedule": "@yearly", "concurrency": "allow"})
    service.engine.delays.update(create=0.05, start=0.05, remove=0.1)
    service.engine.script("busy", seconds=0.3)
    service.wait_for(lambda: "launches" in service.service.beats.loops(), 10, "the pool")
    time.sleep(0.5)
    threads_before = threading.active_count()
    peak_threads, peak_names = 0, [""]
    queue(service, "busy", 40)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if threading.active_count() > peak_threads:
            peak_names = [thread.name for thread in threading.enumerate()]
            peak_threads = len(peak_names)
        runs = service.runs("busy")
        if len(runs) == 40 and all(run.status in FINAL for run in runs):
            break
        time.sleep(0.02)
    runs = service.runs("busy")
    assert [run.status for run in runs] == [RunStatus.SUCCEEDED] * 40
    assert service.engine.peak_in_flight <= 3
    assert 0 < service.engine.peak_removing <= 3
    # 5 runs followed at once, a thread each; one thread for every run's heartbeat.
    assert peak_threads - threads_before <= 5 + 1, peak_names
    service.wait_for(lambda: not service.engine.managed(), 10, "every container removed")


def test_waiting_runs_launch_in_order_of_due_time(serve: Serve) -> None:
    service = serve(max_parallel_launches=1)
    service.apply({"name": "ordered", "schedule": "@yearly", "concurrency": "allow"})
    # Long enough for every run to be claimed and queued while the first launches.
    service.engine.delays["create"] = 0.5
    store = Store(service.database)
    base = datetime.now(UTC) - timedelta(minutes=1)
    # Recorded in one order, due in the reverse one.
    for index in range(8):
        store.record_run(
            NewRun(
                job="ordered",
                scheduled_for=base - timedelta(seconds=index),
                trigger=RunTrigger.MANUAL,
                image=IMAGE,
            )
        )
    runs = ended(service, "ordered", 8, 60)
    # The first launched may have been alone in the queue; the rest go by due time.
    started = sorted(runs, key=lambda run: run.started_at or base)[1:]
    assert [run.scheduled_for for run in started] == sorted(run.scheduled_for for run in started)


def test_a_start_that_timed_out_though_the_container_started_is_followed(
    serve: Serve,
) -> None:
    service = serve(engine_patience_seconds=30)
    service.apply({"name": "slowstart", "schedule": "@yearly"})
    service.engine.script("slowstart", output=b"once\n")
    service.engine.time_out("start", done=True)
    (run,) = queue(service, "slowstart", 1)
    (finished,) = ended(service, "slowstart", 1, 30)
    assert finished.status is RunStatus.SUCCEEDED
    assert service.engine.calls.count("create") == 1
    assert Store(service.database).run(run.id).output == "once\n"
    service.wait_for(lambda: not service.engine.managed(), 10, "every container removed")


def test_a_create_that_timed_out_after_creating_leaves_no_container(serve: Serve) -> None:
    service = serve(engine_patience_seconds=30)
    service.apply({"name": "slowcreate", "schedule": "@yearly"})
    made: list[ContainerSpec] = []
    original = service.engine.create

    def create(spec: ContainerSpec) -> str:
        made.append(spec)
        return original(spec)

    service.engine.create = create  # type: ignore[method-assign]
    service.engine.time_out("create", done=True)
    queue(service, "slowcreate", 1)
    (finished,) = ended(service, "slowcreate", 1, 30)
    assert finished.status is RunStatus.SUCCEEDED
    assert len(made) == 2  # the first one the engine made unbeknown to us, then one more
    assert service.engine.calls.count("start") == 1
    service.wait_for(lambda: not service.engine.managed(), 10, "every container removed")


def test_creates_the_engine_does_not_answer_are_retried_with_backoff(serve: Serve) -> None:
    service = serve(engine_patience_seconds=30)
    service.apply({"name": "away", "schedule": "@yearly"})
    service.engine.time_out("create", times=3, done=False)
    began = time.monotonic()
    queue(service, "away", 1)
    (finished,) = ended(service, "away", 1, 60)
    assert finished.status is RunStatus.SUCCEEDED
    # 0.5 s, 1 s, 2 s, each at least half drawn: not a storm of immediate retries.
    assert time.monotonic() - began >= 0.25 + 0.5 + 1.0
    assert service.engine.calls.count("create") == 4


def test_a_scheduled_fire_past_its_start_deadline_is_skipped_with_the_reason(
    serve: Serve,
) -> None:
    service = serve(max_parallel_launches=1)
    service.apply(
        {"name": "hog", "schedule": "@yearly", "concurrency": "allow"},
        {"name": "strict", "schedule": "@yearly", "start_deadline": "1s"},
        {"name": "patient", "schedule": "@yearly"},
    )
    service.engine.delays["create"] = 0.5
    queue(service, "hog", 6)  # 3 s of launches ahead of the fires below
    store = Store(service.database)
    fired = datetime.now(UTC)
    for job in ("strict", "patient"):
        store.record_run(
            NewRun(job=job, scheduled_for=fired, trigger=RunTrigger.SCHEDULE, image=IMAGE)
        )
    (strict,) = ended(service, "strict", 1, 30)
    (patient,) = ended(service, "patient", 1, 30)
    assert strict.status is RunStatus.SKIPPED
    assert strict.error is not None
    assert strict.error.startswith("missed its start deadline by ")
    assert strict.container_id is None
    assert shapes.run_summary(strict)["skip_reason"] == strict.error
    assert patient.status is RunStatus.SUCCEEDED  # no deadline: late, but it runs
    assert shapes.run_summary(patient)["skip_reason"] is None


def test_saturation_is_logged_once_and_written_to_the_health_file(
    serve: Serve, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("orchestrator.service.launches.SATURATION_TELL_AFTER_SECONDS", 0.5)
    health = tmp_path / "health.json"
    service = serve(health_file=health, max_parallel_launches=1)
    service.apply({"name": "flood", "schedule": "@yearly", "concurrency": "allow"})
    service.engine.delays["create"] = 0.3
    caplog.set_level(logging.INFO, logger="orchestrator.service.launches")
    queue(service, "flood", 12)

    def backlog_in_file() -> bool:
        try:
            launches = json.loads(health.read_text())["launches"]
        except (OSError, ValueError, KeyError):
            return False
        return bool(launches["backlog"] > 0 and launches["saturated_since"])

    service.wait_for(backlog_in_file, 10, "a backlog in the health file")
    # What doctor makes of it: the runs waiting (from the database) and the pool.
    backends = Backends(
        open_store=lambda: Store(service.database),
        engine=lambda: service.engine,
        where=lambda: ON_HOST,
        launch_settings=LaunchSettings,
        launcher=lambda: service.service.launcher,
        secrets_dir=str(tmp_path),
    )
    report = launch_report(backends, health)
    assert report["waiting"] > 0 and report["saturated"] is True
    assert "SATURATED since" in _launches_line(report)
    assert launch_report(backends, tmp_path / "no-such-file")["service"] is None
    ended(service, "flood", 12, 60)
    service.wait_for(
        lambda: "keeps up again" in caplog.text, 10, "the pool to say it keeps up again"
    )
    saturated = [r for r in caplog.records if "launch pool saturated" in r.getMessage()]
    assert len(saturated) == 1  # once per 30 s, not per run
    assert "run(s) waiting" in saturated[0].getMessage()


def test_queued_runs_are_beaten_for_so_no_other_scheduler_adopts_them(serve: Serve) -> None:
    # Beats every third of --adopt-after (0.6 s here), not every 5 s.
    service = serve(max_parallel_launches=1, service_settings={"stale_after_seconds": 0.6})
    service.apply({"name": "waits", "schedule": "@yearly", "concurrency": "allow"})
    service.engine.delays["create"] = 1.0
    queue(service, "waits", 4)
    last = service.wait_for(
        lambda: (
            (runs := service.runs("waits"))
            and runs[-1].owner is not None
            and runs[-1].status is RunStatus.PENDING
            and runs[-1]
        ),
        10,
        "the last run to be claimed and wait",
    )
    time.sleep(1.0)
    again = Store(service.database).run(last.id)
    assert again.status is RunStatus.PENDING
    assert again.heartbeat_at is not None
    assert last.heartbeat_at is None or again.heartbeat_at > last.heartbeat_at


def test_a_dead_schedulers_container_that_never_started_is_replaced_not_awaited(
    serve: Serve,
) -> None:
    """Its scheduler was killed between create and start: the container sits in
    `Created` (waiting for it would wait forever); it is removed and the run launched."""
    service = serve(
        engine_patience_seconds=30,
        service_settings={"stale_after_seconds": 1, "adopt_check_seconds": 0.5},
    )
    service.apply({"name": "orphan", "schedule": "@yearly"})
    store = Store(service.database)
    run = store.record_run(
        NewRun(
            job="orphan",
            scheduled_for=datetime.now(UTC),
            trigger=RunTrigger.SCHEDULE,
            image=IMAGE,
            owner="elsewhere:1:gone",  # its heartbeat goes stale after a second
        )
    )
    handle = service.engine.create(
        ContainerSpec(
            name="orphan-created",
            image=IMAGE,
            labels={
                "orchestrator.managed": "true",
                "orchestrator.job": "orphan",
                "orchestrator.run": str(run.id),
            },
        )
    )
    store.set_container(run.id, handle, None)
    (finished,) = ended(service, "orphan", 1, 30)
    assert finished.status is RunStatus.SUCCEEDED
    assert finished.container_id != handle
    assert service.engine.state(handle) is None
    service.wait_for(lambda: not service.engine.managed(), 10, "every container removed")


def test_a_queued_run_adopted_meanwhile_is_not_started_here(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """This scheduler looked dead (frozen, cut off from the database) and another adopted
    a run waiting in its queue: when its turn comes here, its container is made but never
    started, nothing is recorded, and the adopter's claim stands."""
    caplog.set_level(logging.WARNING)
    service = serve(max_parallel_launches=1)
    service.apply({"name": "waits", "schedule": "@yearly", "concurrency": "allow"})
    service.engine.delays["create"] = 0.5
    first, _, last = queue(service, "waits", 3)
    store = Store(service.database)
    claimed = service.wait_for(
        lambda: (run := store.run(last.id)).owner is not None and run, 10, "the claim"
    )
    assert store.adopt(claimed, "elsewhere:1:adopter", datetime.now(UTC))
    # The line is logged before the container made for it is removed: wait for both.
    service.wait_for(
        lambda: (
            "was adopted by another scheduler; not started here" in caplog.text
            and service.engine.managed(run_id=last.id) == []  # made, never started, removed
        ),
        10,
        "its turn, and its container removed",
    )
    # One launch worker: the other two had been created and started before its turn.
    assert (service.engine.calls.count("create"), service.engine.calls.count("start")) == (3, 2)
    after = store.run(last.id)
    assert (after.status, after.owner, after.container_id) == (
        RunStatus.PENDING,
        "elsewhere:1:adopter",
        None,
    )
    done = service.wait_for(
        lambda: (run := store.run(first.id)).status.finished and run, 10, "the first run to end"
    )
    assert done.status is RunStatus.SUCCEEDED

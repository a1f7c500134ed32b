"""Several schedulers on one PostgreSQL: the database decides who runs each fire."""

from __future__ import annotations

import itertools
import signal
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.records import RunStatus
from orchestrator.store.database import Database
from orchestrator.store.runs import RunRepository
from tests.acceptance.service.conftest import all_runs, not_succeeded, wait_for, write_jobs
from tests.support.engines import ContainerEvents

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.postgres]
SECONDS = 20


@pytest.fixture
def database_url(postgres_database_url: str) -> str:  # the service fixtures use it
    return postgres_database_url


def test_three_schedulers_one_run_per_fire_no_gaps(
    start_service: Any, postgres: Database, tmp_path: Path, container_events: ContainerEvents
) -> None:
    jobs = write_jobs(
        tmp_path,
        '{name: tick, schedule: "@every 1s", image: IMAGE, command: ["true"], concurrency: allow}',
    )
    services = [start_service("--jobs", str(jobs)) for _ in range(3)]
    wait_for(lambda: len(all_runs(postgres, "tick")) >= 3, 60, "the first fires")
    time.sleep(SECONDS)
    assert [service.terminate() for service in services] == [0, 0, 0]
    runs = all_runs(postgres, "tick")
    moments = [run.scheduled_for for run in runs]
    assert len(runs) >= SECONDS
    assert len(set(moments)) == len(moments), "a fire ran twice"
    gaps = [(a, b) for a, b in itertools.pairwise(moments) if b - a != timedelta(seconds=1)]
    assert gaps == [], "fires are missing"
    assert not_succeeded(runs) == []
    # The database key makes a second row impossible, not a second container: the
    # engine's own events tell how many containers each run really had.
    container_events.close()
    assert container_events.doubled() == {}, "a run had two containers"
    started = container_events.containers_by_run("start")
    succeeded = {run.id for run in runs if run.status is RunStatus.SUCCEEDED}
    assert succeeded <= set(started) <= {run.id for run in runs}


def test_a_run_whose_scheduler_died_is_adopted_by_another(
    start_service: Any, postgres: Database, tmp_path: Path, docker_cli: Any
) -> None:
    jobs = write_jobs(
        tmp_path,
        '{name: long, schedule: "0 0 1 1 *", image: IMAGE, '
        'command: [sh, -c, "sleep 5; echo finished"]}',
    )
    docker_cli("jobs", "apply", str(jobs))
    first = start_service("--adopt-after", "3s")
    run_id = int(docker_cli("jobs", "run", "long", "--detach").stdout.split()[2])
    wait_for(lambda: all_runs(postgres, "long")[0].status is RunStatus.RUNNING, 30, "running")
    other = start_service("--adopt-after", "3s")
    owner_before = all_runs(postgres, "long")[0].owner
    first.kill()
    wait_for(lambda: all_runs(postgres, "long")[0].status.finished, 40, "the run to end")
    with postgres.session() as session:
        run = RunRepository(session).get(run_id)
    assert (run.status, run.output) == (RunStatus.SUCCEEDED, "finished\n")
    assert run.owner != owner_before
    assert other.terminate() == 0


def test_a_frozen_scheduler_s_run_is_adopted_once_its_heartbeats_are_stale(
    start_service: Any,
    postgres: Database,
    tmp_path: Path,
    docker_cli: Any,
    container_events: ContainerEvents,
) -> None:
    # Same host, process alive but stopped: only the heartbeat can tell (--adopt-after).
    jobs = write_jobs(
        tmp_path,
        '{name: long, schedule: "0 0 1 1 *", image: IMAGE, '
        'command: [sh, -c, "sleep 10; echo finished"]}',
    )
    docker_cli("jobs", "apply", str(jobs))
    first = start_service("--adopt-after", "3s")
    run_id = int(docker_cli("jobs", "run", "long", "--detach").stdout.split()[2])
    wait_for(lambda: all_runs(postgres, "long")[0].status is RunStatus.RUNNING, 30, "running")
    frozen_owner = all_runs(postgres, "long")[0].owner
    first.process.send_signal(signal.SIGSTOP)
    try:
        other = start_service("--adopt-after", "3s")
        wait_for(lambda: all_runs(postgres, "long")[0].owner != frozen_owner, 30, "adoption")
        adopter = all_runs(postgres, "long")[0].owner
    finally:
        first.process.send_signal(signal.SIGCONT)  # it wakes up to a run no longer its own
    wait_for(lambda: all_runs(postgres, "long")[0].status.finished, 40, "the run to end")
    time.sleep(2)  # the woken scheduler sees the container end too
    with postgres.session() as session:
        run = RunRepository(session).get(run_id)
    assert (run.status, run.output, run.owner) == (RunStatus.SUCCEEDED, "finished\n", adopter)
    assert [first.terminate(), other.terminate()] == [0, 0]
    container_events.close()
    assert len(container_events.containers_by_run("create")[run_id]) == 1  # followed, not rerun


def test_three_schedulers_deliver_each_notification_once(
    start_service: Any, postgres: Database, tmp_path: Path
) -> None:
    from orchestrator.records import DeliveryStatus
    from orchestrator.store.facade import Store
    from tests.acceptance.service.test_notifications import LOOPBACK_GRANT, Receiver

    receiver = Receiver()
    receiver.delay = 0.7  # slow: each delivery is held long enough for others to try it
    receiver.start()
    try:
        jobs = write_jobs(
            tmp_path,
            f"""
- name: noisy
  schedule: "@every 1s"
  image: IMAGE
  command: [sh, -c, "exit 1"]
  concurrency: allow
  notify: [{{webhook: "{receiver.url}"}}]
""",
        )
        services = [start_service("--jobs", str(jobs), env=LOOPBACK_GRANT) for _ in range(3)]
        wait_for(lambda: len(receiver.received) >= 3, 60, "the first notifications")
        time.sleep(12)
        store = Store(postgres)
        # The load stops, every run ends, then every notification is delivered: none is
        # in flight when the schedulers stop (that one could be told again: at least once).
        store.set_job_enabled("noisy", False)
        time.sleep(3)  # the schedulers see it within a second; fires already queued run
        wait_for(
            lambda: all(run.status.finished for run in all_runs(postgres, "noisy")),
            30,
            "every run to end",
        )
        wait_for(
            lambda: all(
                item.status is DeliveryStatus.DELIVERED
                for item in store.notifications(job="noisy", limit=1000)
            ),
            60,
            "every notification delivered",
        )
        assert [service.terminate() for service in services] == [0, 0, 0]
        told = [int(headers["x-orchestrator-delivery"]) for headers, _ in receiver.received]
        outbox = store.notifications(job="noisy", limit=1000)
        assert len(told) == len(set(told)), "a notification was delivered twice"
        delivered = [item for item in outbox if item.status is DeliveryStatus.DELIVERED]
        assert sorted(told) == sorted(item.id for item in delivered)
        assert sorted(event["id"] for event in receiver.events()) == sorted(
            item.run_id for item in delivered
        )
        failed = {run.id for run in all_runs(postgres, "noisy") if run.status is RunStatus.FAILED}
        assert {item.run_id for item in delivered} <= failed
        assert len(told) >= 10
        # Each was claimed and sent by one scheduler: one attempt each.
        assert {item.attempts for item in outbox if item.status is DeliveryStatus.DELIVERED} == {1}
    finally:
        receiver.stop()

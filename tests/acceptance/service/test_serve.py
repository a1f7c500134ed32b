"""`orchestrator serve` end to end: fires, live changes, overlap, retries, catch-up,
restart recovery, shutdown, several schedulers."""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from orchestrator.records import NewRun, RunStatus, RunTrigger
from orchestrator.store.database import Database
from orchestrator.store.leases import PortLeaseRepository
from orchestrator.store.models import JobRow
from orchestrator.store.runs import RunRepository
from tests.acceptance.service.conftest import all_runs, wait_for, write_jobs
from tests.support.engines import ContainerEvents

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_every_fire_is_one_run_and_sigterm_exits_promptly(
    start_service: Any, database: Database, tmp_path: Path, docker_cli: Any
) -> None:
    jobs = write_jobs(
        tmp_path,
        """
- {name: tick, schedule: "@every 1s", image: IMAGE, command: [echo, tick], concurrency: allow}
""",
    )
    service = start_service("--jobs", str(jobs))
    runs = wait_for(
        lambda: (
            [r for r in all_runs(database, "tick") if r.status.finished][5:]
            and all_runs(database, "tick")
        ),
        60,
        "six finished runs",
    )
    assert json.loads((tmp_path / "health.json").read_text())["jobs"] == 1
    assert "healthy" in docker_cli("health", "--health-file", str(tmp_path / "health.json")).stdout
    started = time.monotonic()
    assert service.terminate() == 0
    assert time.monotonic() - started < 10
    runs = all_runs(database, "tick")
    moments = [r.scheduled_for for r in runs]
    assert len(set(moments)) == len(moments)  # no fire twice
    assert all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(moments))
    assert all(r.trigger is RunTrigger.SCHEDULE and r.attempt == 1 for r in runs)
    done = [r for r in runs if r.status.finished]
    assert all(r.status is RunStatus.SUCCEEDED and r.exit_code == 0 for r in done)


def test_live_changes_and_detached_runs(
    start_service: Any, database: Database, tmp_path: Path, docker_cli: Any
) -> None:
    service = start_service()
    wait_for(lambda: (tmp_path / "health.json").exists(), 30, "the service to start")
    jobs = write_jobs(
        tmp_path,
        """
- {name: live, schedule: "@every 1s", image: IMAGE, command: ["true"], concurrency: allow}
- {name: adhoc, schedule: "0 0 1 1 *", image: IMAGE, command: [echo, adhoc]}
""",
    )
    docker_cli("jobs", "apply", str(jobs))
    wait_for(lambda: len(all_runs(database, "live")) >= 2, 15, "a newly applied job to fire")

    docker_cli("jobs", "disable", "live")
    time.sleep(3)  # the change is seen within a second or two
    count = len(all_runs(database, "live"))
    time.sleep(3)
    assert len(all_runs(database, "live")) == count

    docker_cli("jobs", "enable", "live")
    wait_for(lambda: len(all_runs(database, "live")) >= count + 2, 15, "the job to fire again")
    docker_cli("jobs", "delete", "live")
    time.sleep(3)
    count = len(all_runs(database, "live"))
    time.sleep(2)
    assert len(all_runs(database, "live")) == count

    queued = docker_cli("jobs", "run", "adhoc", "--detach").stdout
    run_id = int(queued.split()[2])
    run = wait_for(
        lambda: next(
            (r for r in all_runs(database, "adhoc") if r.id == run_id and r.status.finished), None
        ),
        15,
        "adhoc",
    )
    assert run.status is RunStatus.SUCCEEDED and run.trigger is RunTrigger.MANUAL
    assert run.started_at is not None and (run.started_at - run.created_at) < timedelta(seconds=1.5)
    assert service.terminate() == 0


def test_forbid_records_skips_and_replace_cancels_the_old_run(
    start_service: Any, database: Database, tmp_path: Path, container_events: ContainerEvents
) -> None:
    jobs = write_jobs(
        tmp_path,
        """
- {name: hung, schedule: "@every 1s", image: IMAGE, command: [sleep, "30"], concurrency: forbid}
- {name: fresh, schedule: "@every 2s", image: IMAGE, command: [sleep, "99"], concurrency: replace}
""",
    )
    service = start_service("--jobs", str(jobs))
    wait_for(
        lambda: len([r for r in all_runs(database, "hung") if r.status is RunStatus.SKIPPED]) >= 2,
        30,
        "skipped runs",
    )

    def replaced() -> list[int]:  # cancelled by a newer fire, with a container to stop
        fresh = all_runs(database, "fresh")
        return [r.id for r in fresh if r.status is RunStatus.CANCELLED and r.container_id]

    first = wait_for(replaced, 30, "a replaced run")
    wait_for(  # the engine's word: their containers died (after a grace of 10 s)
        lambda: set(first) <= set(container_events.containers_by_run("die")),
        30,
        "the replaced runs' containers to stop",
    )
    assert service.terminate() == 0
    hung = all_runs(database, "hung")
    running = [r for r in hung if r.status is RunStatus.RUNNING]
    assert len(running) == 1
    skipped = [r for r in hung if r.status is RunStatus.SKIPPED]
    assert all(f"run {running[0].id} of hung still running" in (r.error or "") for r in skipped)
    fresh = all_runs(database, "fresh")
    # Replaced runs stay running until their containers stop (a cancel does not lie);
    # of the others, one at most.
    assert sum(r.status is RunStatus.RUNNING and r.cancel_requested_at is None for r in fresh) <= 1


def test_retries_are_further_attempts_linked_to_the_first(
    start_service: Any, database: Database, tmp_path: Path
) -> None:
    jobs = write_jobs(
        tmp_path,
        """
- name: flaky
  schedule: "@every 1h"
  image: IMAGE
  command: [sh, -c, "exit 2"]
  retries: {count: 2, backoff: 1s}
  catchup: {policy: latest}
""",
    )
    # One missed fire to catch up, so the job runs now.
    start = datetime.now(UTC)
    database_jobs(database, jobs)
    this_hour = start.replace(minute=0, second=0, microsecond=0)  # the fire to catch up
    with database.session() as session:
        RunRepository(session).add(
            NewRun(
                "flaky",
                this_hour - timedelta(hours=2),
                RunTrigger.SCHEDULE,
                status=RunStatus.SUCCEEDED,
            )
        )
        session.execute(update(JobRow).values(updated_at=start - timedelta(days=1)))
    service = start_service()
    wait_for(
        lambda: len([r for r in all_runs(database, "flaky") if r.status.finished]) >= 4,
        45,
        "three attempts",
    )
    time.sleep(2)
    assert service.terminate() == 0
    attempts = [r for r in all_runs(database, "flaky") if r.scheduled_for == this_hour]
    assert [(r.attempt, r.trigger, r.status, r.exit_code) for r in attempts] == [
        (1, RunTrigger.CATCHUP, RunStatus.FAILED, 2),
        (2, RunTrigger.RETRY, RunStatus.FAILED, 2),
        (3, RunTrigger.RETRY, RunStatus.FAILED, 2),
    ]
    first = attempts[0]
    assert attempts[1].first_run_id == first.id and attempts[2].first_run_id == first.id
    assert attempts[2].started_at - attempts[1].finished_at >= timedelta(seconds=0.9)  # type: ignore[operator]


def database_jobs(database: Database, folder: Path) -> None:
    from orchestrator.spec import load_jobs
    from orchestrator.store.jobs import JobRepository

    with database.session() as session:
        JobRepository(session).apply(load_jobs([folder]))


@pytest.mark.parametrize(("policy", "expected"), [("none", 0), ("latest", 1), ("all", 5)])
def test_catch_up_after_downtime(
    start_service: Any, database: Database, tmp_path: Path, policy: str, expected: int
) -> None:
    jobs = write_jobs(
        tmp_path,
        f"""
- name: minutely
  schedule: "@every 1m"
  image: IMAGE
  command: ["true"]
  catchup: {{policy: {policy}, deadline: 5m}}
""",
    )
    now = datetime.now(UTC)
    database_jobs(database, jobs)
    with database.session() as session:
        # History says the last fire was 20 minutes ago: the service was down since.
        last = now.replace(second=0, microsecond=0) - timedelta(minutes=20)
        RunRepository(session).add(
            NewRun("minutely", last, RunTrigger.SCHEDULE, status=RunStatus.SUCCEEDED)
        )
        session.execute(update(JobRow).values(updated_at=now - timedelta(days=1)))
    service = start_service()
    wait_for(lambda: (tmp_path / "health.json").exists(), 30, "the service to start")
    if expected:
        wait_for(
            lambda: (
                len(
                    [
                        r
                        for r in all_runs(database, "minutely")
                        if r.trigger is RunTrigger.CATCHUP and r.status.finished
                    ]
                )
                >= expected
            ),
            30,
            "catch-up runs",
        )
    time.sleep(1.5)
    assert service.terminate() == 0
    caught = [r for r in all_runs(database, "minutely") if r.trigger is RunTrigger.CATCHUP]
    assert len(caught) == expected
    assert all(
        now - timedelta(minutes=5) <= r.scheduled_for <= now + timedelta(seconds=5) for r in caught
    )
    assert all(r.scheduled_for.second == 0 for r in caught)


def test_killed_mid_run_then_restarted_the_run_ends_truthfully(
    start_service: Any,
    database: Database,
    tmp_path: Path,
    docker_cli: Any,
    docker_client: Any,
    test_label: dict[str, str],
) -> None:
    jobs = write_jobs(
        tmp_path,
        """
- name: long
  schedule: "0 0 1 1 *"
  image: IMAGE
  command: [sh, -c, "echo start; sleep 4; echo end; exit 3"]
  ports: ["8080"]
""",
    )
    docker_cli("jobs", "apply", str(jobs))
    first = start_service()
    run_id = int(docker_cli("jobs", "run", "long", "--detach").stdout.split()[2])
    wait_for(lambda: all_runs(database, "long")[0].status is RunStatus.RUNNING, 30, "running")
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    ((key, value),) = test_label.items()
    assert docker_client.containers.list(filters={"label": f"{key}={value}"})  # still running
    second = start_service()
    run = wait_for(
        lambda: next((r for r in all_runs(database, "long") if r.status.finished), None),
        40,
        "the run to finish",
    )
    assert second.terminate() == 0
    with database.session() as session:
        run = RunRepository(session).get(run_id)
        assert PortLeaseRepository(session).list() == []
    assert (run.status, run.exit_code, run.output) == (RunStatus.FAILED, 3, "start\nend\n")
    assert len(all_runs(database, "long")) == 1  # nothing duplicated
    assert docker_client.containers.list(all=True, filters={"label": f"{key}={value}"}) == []


def test_runs_whose_container_ended_or_vanished_while_down(
    start_service: Any,
    database: Database,
    tmp_path: Path,
    docker_cli: Any,
    docker_client: Any,
) -> None:
    jobs = write_jobs(
        tmp_path,
        """
- {name: quick, schedule: "0 0 1 1 *", image: IMAGE, command: [sh, -c, "sleep 2; echo bye; exit 5"]}
- {name: doomed, schedule: "0 0 1 1 *", image: IMAGE, command: [sleep, "60"]}
""",
    )
    docker_cli("jobs", "apply", str(jobs))
    first = start_service()
    quick = int(docker_cli("jobs", "run", "quick", "--detach").stdout.split()[2])
    doomed = int(docker_cli("jobs", "run", "doomed", "--detach").stdout.split()[2])
    wait_for(
        lambda: (
            all(r.status is RunStatus.RUNNING for r in all_runs(database))
            and len(all_runs(database)) == 2
        ),
        30,
        "both running",
    )
    first.kill()
    with database.session() as session:
        doomed_container = RunRepository(session).get(doomed).container_id
    docker_client.api.remove_container(doomed_container, force=True)
    time.sleep(3)  # quick exits while no scheduler watches
    second = start_service()
    wait_for(lambda: all(r.status.finished for r in all_runs(database)), 30, "both ended")
    assert second.terminate() == 0
    with database.session() as session:
        ended_quick, ended_doomed = (
            RunRepository(session).get(quick),
            RunRepository(session).get(doomed),
        )
    assert (ended_quick.status, ended_quick.exit_code, ended_quick.output) == (
        RunStatus.FAILED,
        5,
        "bye\n",
    )
    assert ended_doomed.status is RunStatus.LOST
    assert "vanished" in (ended_doomed.error or "")


def test_sigterm_with_a_run_in_flight_exits_0_and_the_next_start_reattaches(
    start_service: Any, database: Database, tmp_path: Path, docker_cli: Any
) -> None:
    jobs = write_jobs(
        tmp_path,
        """
- {name: slowpoke, schedule: "0 0 1 1 *", image: IMAGE, command: [sh, -c, "sleep 3; echo done"]}
""",
    )
    docker_cli("jobs", "apply", str(jobs))
    first = start_service()
    docker_cli("jobs", "run", "slowpoke", "--detach")
    wait_for(lambda: all_runs(database)[0].status is RunStatus.RUNNING, 30, "running")
    started = time.monotonic()
    assert first.terminate() == 0
    assert time.monotonic() - started < 5
    assert all_runs(database)[0].status is RunStatus.RUNNING  # left to be reattached
    second = start_service()
    run = wait_for(
        lambda: all_runs(database)[0].status.finished and all_runs(database)[0], 30, "end"
    )
    with database.session() as session:
        run = RunRepository(session).get(run.id)
    assert (run.status, run.output) == (RunStatus.SUCCEEDED, "done\n")
    assert second.terminate() == 0


def test_health_fails_while_the_service_is_frozen_and_recovers_with_it(
    start_service: Any, database: Database, tmp_path: Path, docker_cli: Any
) -> None:
    health = ("health", "--health-file", str(tmp_path / "health.json"), "--max-age", "3s")
    service = start_service()
    wait_for(lambda: docker_cli(*health, expect=None).exit_code == 0, 60, "a healthy service")
    service.process.send_signal(signal.SIGSTOP)  # alive, but no loop makes progress
    try:
        time.sleep(4)
        result = docker_cli(*health, expect=1)
        assert "unhealthy: the fires loop last made progress" in result.stderr
    finally:
        service.process.send_signal(signal.SIGCONT)
    wait_for(lambda: docker_cli(*health, expect=None).exit_code == 0, 10, "health again")
    assert service.terminate() == 0
    missing = docker_cli("health", "--health-file", str(tmp_path / "none.json"), expect=1)
    assert "unhealthy: no health file" in missing.stderr


def test_a_foreground_run_whose_cli_was_killed_is_adopted_by_the_service(
    start_service: Any, database: Database, tmp_path: Path, docker_cli: Any, service_env: Any
) -> None:
    import subprocess
    import sys

    jobs = write_jobs(
        tmp_path,
        """
- {name: manual, schedule: "0 0 1 1 *", image: IMAGE,
   command: [sh, -c, "sleep 3; echo over; exit 4"]}
""",
    )
    docker_cli("jobs", "apply", str(jobs))
    cli = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "jobs", "run", "manual"],
        env=service_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run = wait_for(
        lambda: next(
            (r for r in all_runs(database, "manual") if r.status is RunStatus.RUNNING), None
        ),
        30,
        "the manual run",
    )
    assert run.owner and run.owner.split(":")[1] == str(cli.pid)
    cli.kill()
    cli.wait(10)
    service = start_service()
    ended = wait_for(lambda: all_runs(database, "manual")[0].status.finished, 30, "adoption")
    assert ended
    with database.session() as session:
        finished = RunRepository(session).get(run.id)
    assert (finished.status, finished.exit_code, finished.output) == (RunStatus.FAILED, 4, "over\n")
    assert service.terminate() == 0


def test_a_service_started_before_the_engine_answers_waits_for_it(
    start_service: Any, database: Database, tmp_path: Path
) -> None:
    # The chaos soak started a scheduler again while the engine restarted: it exited 1.
    real = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")
    socket_path = tmp_path / "engine.sock"  # not there yet: the engine is "restarting"
    service = start_service(env={"DOCKER_HOST": f"unix://{socket_path}"})
    wait_for(lambda: "waiting for the engine" in service.output(), 30, "the wait to be told")
    assert service.process.poll() is None
    socket_path.symlink_to(real)  # the engine is back
    wait_for(lambda: (tmp_path / "health.json").exists(), 60, "the service to start")
    assert service.terminate() == 0

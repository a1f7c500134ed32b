"""A run's end is always written and a cancel does not lie, through the real executable
(`orchestrator serve`, `orchestrator runs cancel`), the real engine, and both databases:
a NUL byte in a job's output, a container that ignores SIGTERM, a container the engine
will not stop (paused)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from orchestrator.records import RunRecord, RunStatus
from orchestrator.store.database import Database
from tests.acceptance.service.conftest import all_runs, wait_for, write_jobs
from tests.support.engines import ContainerEvents

pytestmark = [pytest.mark.docker]


def orchestrator(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real executable, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def running_run(database: Database, job: str) -> RunRecord:
    return wait_for(
        lambda: next(
            (
                r
                for r in all_runs(database, job)
                if r.status is RunStatus.RUNNING and r.container_id
            ),
            None,
        ),
        60,
        f"a running run of {job}",
    )


def died_at(events: ContainerEvents, run: RunRecord) -> datetime:
    """When the engine says the run's container died (from its event stream)."""
    (died,) = wait_for(
        lambda: [
            event
            for event in events.events
            if event.get("Action") == "die" and event["Actor"]["ID"] == run.container_id
        ],
        10,
        "the engine's die event",
    )
    return datetime.fromtimestamp(int(died["timeNano"]) / 1e9, UTC)


def test_a_nul_byte_in_output_is_kept_readable_and_the_run_succeeds(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    # The attack: a job prints a NUL byte. PostgreSQL's text refuses it: the end was
    # refused, the run recorded `failed` without its output in its stead.
    jobs = write_jobs(
        tmp_path,
        r"""
- {name: nul, schedule: "0 0 1 1 *", image: IMAGE, command: [printf, 'a\000b\n']}
""",
    )
    assert orchestrator(service_env, "jobs", "apply", str(jobs)).returncode == 0
    ran = orchestrator(service_env, "jobs", "run", "nul")
    assert ran.returncode == 0, ran.stderr
    shown = json.loads(orchestrator(service_env, "runs", "show", "1", "--json").stdout)
    assert (shown["status"], shown["exit_code"], shown["error"]) == ("succeeded", 0, None)
    # The same escape on both databases, as bytes that are not UTF-8 are kept (\xff).
    assert shown["output"] == "a\\x00b\n"


def test_a_cancel_is_recorded_once_the_container_has_stopped(
    start_service: Any,
    service_env: dict[str, str],
    database: Database,
    tmp_path: Path,
    container_events: ContainerEvents,
) -> None:
    # The attack: a container that ignores SIGTERM. Before, the run was recorded
    # cancelled before the stop began, while its container ran on for the grace.
    jobs = write_jobs(
        tmp_path,
        """
- name: stubborn
  schedule: "0 0 1 1 *"
  image: IMAGE
  command: [sh, -c, "trap '' TERM; sleep 300"]
""",
    )
    assert orchestrator(service_env, "jobs", "apply", str(jobs)).returncode == 0
    start_service()
    queued = orchestrator(service_env, "jobs", "run", "stubborn", "--detach")
    assert queued.returncode == 0, queued.stderr
    run = running_run(database, "stubborn")
    cancelled = orchestrator(service_env, "runs", "cancel", str(run.id), "--grace", "2")
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() == f"run {run.id} of stubborn cancelled"
    ended = next(r for r in all_runs(database, "stubborn") if r.id == run.id)
    assert ended.status is RunStatus.CANCELLED and ended.finished_at is not None
    # The engine's own word: the container died (SIGKILL, after the grace) before the
    # run was recorded cancelled.
    assert died_at(container_events, run) <= ended.finished_at
    assert ended.cancel_requested_at is not None
    assert (ended.finished_at - ended.cancel_requested_at).total_seconds() >= 2


def test_a_cancel_whose_stop_fails_keeps_forbid_from_starting_a_second_run(
    start_service: Any,
    service_env: dict[str, str],
    database: Database,
    tmp_path: Path,
    container_events: ContainerEvents,
    docker_client: Any,
) -> None:
    # The attack: cancel a run from where the engine cannot stop its container (here
    # the canceller cannot reach the engine at all). Before, the run was recorded
    # cancelled anyway, its container went on, and the next fire of a `forbid` job
    # started a second run beside it.
    jobs = write_jobs(
        tmp_path,
        """
- name: single
  schedule: "@every 1s"
  image: IMAGE
  concurrency: forbid
  command: [sh, -c, "trap 'exit 143' TERM; sleep 300 & wait"]
""",
    )
    start_service("--jobs", str(jobs))
    run = running_run(database, "single")
    cut_off = {**service_env, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    refused = orchestrator(cut_off, "runs", "cancel", str(run.id), "--grace", "1")
    # The next run that starts: by then the first one's container must have stopped.
    later = wait_for(
        lambda: next(
            (r for r in all_runs(database, "single") if r.id > run.id and r.container_id), None
        ),
        40,
        "the next fire to run",
    )
    assert not running(docker_client, run.container_id), f"run {later.id} started beside it"
    ended = next(r for r in all_runs(database, "single") if r.id == run.id)
    assert ended.status is RunStatus.CANCELLED and ended.finished_at is not None
    assert died_at(container_events, run) <= ended.finished_at
    # Its service stopped it again (from 4 s after the cancel); until then every fire
    # of the job was skipped, naming it.
    asked = ended.cancel_requested_at
    assert asked is not None
    between = [r for r in all_runs(database, "single") if asked < r.created_at < ended.finished_at]
    assert len(between) >= 3  # fires met it (one a second, for 4 s and more)
    assert all(r.status is RunStatus.SKIPPED for r in between), [
        (r.id, r.status.value) for r in between
    ]
    assert all(f"run {run.id} of single still running" in (r.error or "") for r in between)
    # And the canceller was told the truth.
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        f"run {run.id}: cancel asked, but its container {run.container_id[:12]} "
        "could not be stopped: cannot reach the Docker engine"
    ), refused.stderr
    assert refused.stderr.strip().endswith("and its scheduler keeps stopping it")


def running(client: Any, container_id: str) -> bool:
    import docker.errors

    try:
        return bool(client.api.inspect_container(container_id)["State"]["Running"])
    except docker.errors.NotFound:
        return False

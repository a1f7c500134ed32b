"""Our SIGKILL while an exec job runs, with `orchestrator serve` on the real engine: the
next start adopts the exec by its handle, records the end it had (its exit code), and a
timeout that passed meanwhile stops the command: no process of it is left in the
target."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from orchestrator.records import RunStatus
from orchestrator.store.database import Database
from tests.acceptance.service.conftest import all_runs, wait_for, write_jobs
from tests.support.engines import JOB_IMAGE

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def target(test_label: dict[str, str]) -> str:
    ((key, value),) = test_label.items()
    name = f"exec-recovery-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "--label", f"{key}={value}",
         JOB_IMAGE, "sleep", "300"],
        check=True, capture_output=True,
    )  # fmt: skip
    return name


def _processes(container: str) -> str:
    done = subprocess.run(
        ["docker", "exec", container, "ps", "-o", "args"], capture_output=True, text=True
    )
    return done.stdout


def test_an_exec_running_through_our_sigkill_has_its_end_recorded_by_the_next_start(
    start_service: Any, database: Database, tmp_path: Path, target: str
) -> None:
    jobs = write_jobs(
        tmp_path,
        f"""
- name: slow
  schedule: "@every 1h"
  run_on_start: true
  kind: exec
  container: {target}
  command: ["sh", "-c", "sleep 4; exit 7"]
- name: stuck
  schedule: "@every 1h"
  run_on_start: true
  kind: exec
  container: {target}
  timeout: 3s
  command: ["sleep", "271"]
""",
    )
    first = start_service("--jobs", str(jobs))
    for job in ("slow", "stuck"):
        wait_for(
            lambda j=job: [r for r in all_runs(database, j) if r.status is RunStatus.RUNNING],
            60,
            f"{job} running",
        )
    wait_for(lambda: "sleep 271" in _processes(target), 10, "the stuck command in the target")
    first.kill()
    assert "sleep 271" in _processes(target)  # our death did not end it
    second = start_service("--jobs", str(jobs))
    wait_for(lambda: all_runs(database, "slow")[0].status.finished, 60, "slow's end")
    wait_for(lambda: all_runs(database, "stuck")[0].status.finished, 60, "stuck's end")
    slow, stuck = all_runs(database, "slow")[0], all_runs(database, "stuck")[0]
    assert (slow.status, slow.exit_code) == (RunStatus.FAILED, 7), slow
    assert stuck.status is RunStatus.TIMED_OUT, stuck
    wait_for(lambda: "sleep 271" not in _processes(target), 10, "the stuck command gone")
    assert second.terminate() == 0


def test_an_exec_whose_container_went_while_we_were_dead_ends_lost_saying_why(
    start_service: Any, database: Database, tmp_path: Path, target: str
) -> None:
    jobs = write_jobs(
        tmp_path,
        f"""
- name: orphan
  schedule: "@every 1h"
  run_on_start: true
  kind: exec
  container: {target}
  command: ["sleep", "272"]
""",
    )
    first = start_service("--jobs", str(jobs))
    wait_for(
        lambda: [r for r in all_runs(database, "orphan") if r.status is RunStatus.RUNNING],
        60,
        "orphan running",
    )
    first.kill()
    subprocess.run(["docker", "rm", "-f", target], check=True, capture_output=True)
    second = start_service("--jobs", str(jobs))
    wait_for(lambda: all_runs(database, "orphan")[0].status.finished, 60, "orphan's end")
    run = all_runs(database, "orphan")[0]
    assert run.status is RunStatus.LOST, run
    assert "was no longer known to the engine" in (run.error or ""), run.error
    assert "its end is unknown" in (run.error or ""), run.error
    assert second.terminate() == 0

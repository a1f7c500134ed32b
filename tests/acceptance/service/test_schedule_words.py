"""The schedule words end to end: two `orchestrator serve` processes on one database
(SQLite and PostgreSQL) and the real engine; `run_on_start` runs once for both, and
`orchestrator pause` / `resume` (the executable) stop and restart a job's fires."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.records import RunTrigger
from orchestrator.store.database import Database
from tests.acceptance.service.conftest import all_runs, wait_for, write_jobs

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_two_schedulers_run_on_start_once_and_obey_pause_and_resume(
    start_service: Any, database: Database, tmp_path: Path, service_env: dict[str, str]
) -> None:
    jobs = write_jobs(
        tmp_path,
        """
- {name: tick, schedule: "@every 1s", image: IMAGE, command: ["true"], concurrency: allow}
- {name: warmup, schedule: "@manual", run_on_start: true, image: IMAGE, command: ["true"]}
""",
    )
    first = start_service("--jobs", str(jobs))
    second = start_service("--jobs", str(jobs))
    wait_for(lambda: len(all_runs(database, "tick")) >= 3, 60, "ticks")
    wait_for(lambda: "started with" in second.output(), 30, "the second scheduler")
    assert len(all_runs(database, "warmup")) == 1

    paused = _cli(service_env, tmp_path, "pause", "ti*")
    assert (paused.returncode, paused.stdout) == (0, "tick paused\n"), paused.stderr
    for service in (first, second):
        wait_for(lambda s=service: "unscheduled tick" in s.output(), 30, "tick unscheduled")
    quiet_from = datetime.now(UTC)
    time.sleep(3)
    fired = [r for r in all_runs(database, "tick") if r.scheduled_for > quiet_from]
    assert fired == []
    listed = _cli(service_env, tmp_path, "jobs", "list")
    assert "paused by cli:" in next(line for line in listed.stdout.splitlines() if "tick" in line)

    resumed_at = datetime.now(UTC)  # the resume commits after this, while the CLI runs
    resumed = _cli(service_env, tmp_path, "resume")
    assert resumed.stdout == "tick resumed\n", resumed.stderr
    wait_for(
        lambda: [r for r in all_runs(database, "tick") if r.scheduled_for > resumed_at],
        30,
        "a fire after resume",
    )
    ticks = [r for r in all_runs(database, "tick") if r.trigger is RunTrigger.SCHEDULE]
    moments = [r.scheduled_for for r in ticks]
    assert len(set(moments)) == len(moments)  # one run per fire, two schedulers
    caught_up = [r for r in all_runs(database, "tick") if r.trigger is RunTrigger.CATCHUP]
    assert caught_up == []  # the paused seconds are not made up for
    assert not [m for m in moments if quiet_from + timedelta(seconds=1) < m < resumed_at]
    assert len(all_runs(database, "warmup")) == 1

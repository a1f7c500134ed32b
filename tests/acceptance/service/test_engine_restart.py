"""An engine restart under a running service (the engine .ci/run started): runs end
truthfully, and firing resumes."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.records import RunStatus
from orchestrator.store.database import Database
from tests.acceptance.service.conftest import all_runs, wait_for, write_jobs

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.postgres, pytest.mark.serial]


@pytest.fixture
def database_url(postgres_database_url: str) -> str:  # the service fixtures use it
    return postgres_database_url


def restart_engine() -> None:
    """Stop and start the local dockerd as .ci/run starts it (only where we run it)."""
    from benchmarks.chaos import restart_engine as restart

    try:
        restart()
    except RuntimeError as error:
        if os.environ.get("CI"):
            pytest.fail(f"{error} (.ci/run starts one)")
        pytest.skip(str(error))


def test_an_engine_restart_ends_runs_truthfully_and_firing_resumes(
    start_service: Any, postgres: Database, tmp_path: Path
) -> None:
    jobs = write_jobs(
        tmp_path,
        '- {name: tick, schedule: "@every 1s", image: IMAGE, command: ["true"], '
        "concurrency: allow}\n"
        '- {name: long, schedule: "0 0 1 1 *", image: IMAGE, command: [sleep, "300"]}\n',
    )
    service = start_service("--jobs", str(jobs))
    from tests.conftest import Cli

    wait_for(lambda: all_runs(postgres, "tick"), 60, "the service to start")
    Cli(postgres.url.render_as_string(hide_password=False))("jobs", "run", "long", "--detach")
    wait_for(lambda: all_runs(postgres, "long")[0].status is RunStatus.RUNNING, 60, "long runs")
    restart_engine()
    long = wait_for(
        lambda: all_runs(postgres, "long")[0].status.finished and all_runs(postgres, "long")[0],
        90,
        "the interrupted run to end",
    )
    assert long.status is RunStatus.FAILED and long.exit_code is not None  # the engine stopped it
    after = time.monotonic()
    wait_for(
        lambda: any(
            r.status is RunStatus.SUCCEEDED
            and r.finished_at
            and (r.finished_at.timestamp() > time.time() - (time.monotonic() - after))
            for r in all_runs(postgres, "tick")
        ),
        60,
        "ticks after the restart",
    )
    assert service.process.poll() is None, service.output()[-2000:]
    assert service.terminate() == 0
    # Fires that came while the engine was away waited for it: none failed to start.
    never_started = [
        (r.id, r.error)
        for r in all_runs(postgres, "tick")
        if r.status is RunStatus.FAILED and r.exit_code is None
    ]
    assert never_started == []
    assert "engine unavailable" in service.output()

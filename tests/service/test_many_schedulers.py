"""Several schedulers on one PostgreSQL: the database decides who runs each fire."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.records import RunStatus
from orchestrator.store.database import Database
from orchestrator.store.runs import RunRepository
from tests.service.conftest import all_runs, not_succeeded, wait_for, write_jobs

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.postgres]
SECONDS = 20


@pytest.fixture
def database_url(postgres_database_url: str) -> str:  # the service fixtures use it
    return postgres_database_url


def test_three_schedulers_one_run_per_fire_no_gaps(
    start_service: Any, postgres: Database, tmp_path: Path
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
    owners = {run.owner for run in runs}
    assert 1 <= len(owners) <= 3
    assert not_succeeded(runs) == []


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

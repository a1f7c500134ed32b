"""Label jobs of a compose project, with `orchestrator serve` and docker-compose on the real
engine: the project's jobs are stored within 2 s of `up`, run, are disabled by `stop` and
leave (their runs kept) after `down`; the replicas of a scaled service make one job that
runs in one running replica per fire. Each test brings the project up under a name of its
own and takes it down with `down -v` whatever happens."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.store.database import Database
from orchestrator.store.facade import Store
from orchestrator.store.runs import RunRepository
from tests.acceptance.service.conftest import all_runs, wait_for
from tests.support.engines import JOB_IMAGE

pytestmark = [pytest.mark.docker, pytest.mark.slow]

COMPOSE = """
version: "2.4"
services:
  app:
    image: {image}
    command: ["sleep", "300"]
    stop_signal: SIGKILL
    network_mode: none
    labels:
      {test_key}: "{test_value}"
      orchestrator.job.who.kind: exec
      orchestrator.job.who.schedule: "@every 1s"
      orchestrator.job.who.command: '["hostname"]'
      orchestrator.job.who.concurrency: allow
"""

Compose = Callable[..., str]


@pytest.fixture
def compose(tmp_path: Path, test_label: dict[str, str]) -> Iterator[tuple[str, Compose]]:
    """docker-compose on a project of the test's own, taken down (`down -v`) afterwards."""
    binary = shutil.which("docker-compose")
    assert binary is not None, "docker-compose is not installed"
    ((key, value),) = test_label.items()
    project = f"lbl{value[:10]}"
    file = tmp_path / "compose.yaml"
    file.write_text(COMPOSE.format(image=JOB_IMAGE, test_key=key, test_value=value))
    base = [binary, "-p", project, "-f", str(file)]

    def run(*args: str) -> str:
        done = subprocess.run(
            [*base, *args], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, f"docker-compose {' '.join(args)}: {done.stderr}"
        return done.stdout

    try:
        yield project, run
    finally:
        subprocess.run([*base, "down", "-v"], capture_output=True, timeout=120, check=False)


def _outputs(database: Database, job: str) -> list[str]:
    with database.session() as session:
        runs = RunRepository(session)
        return [
            (runs.get(r.id).output or "").strip()
            for r in all_runs(database, job)
            if r.status.finished
        ]


def _hostnames(project: str) -> set[str]:
    ids = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={project}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return {container_id[:12] for container_id in ids}


def test_a_compose_projects_jobs_come_with_up_stop_and_down(
    start_service: Any, database: Database, compose: tuple[str, Compose]
) -> None:
    project, run = compose
    service = start_service(
        env={
            "ORCHESTRATOR_LABEL_JOBS": "on",
            "ORCHESTRATOR_LABEL_FILTER": f"com.docker.compose.project={project}",
        }
    )
    wait_for(lambda: "started with" in service.output(), 60, "the service up")
    store = Store(database)
    run("up", "-d")
    up = time.monotonic()
    wait_for(lambda: "who" in {j.name for j in store.jobs()}, 2, "the job within 2 s of up")
    print(f"discovery latency (compose up returned -> job stored): {time.monotonic() - up:.2f}s")
    assert store.job("who").source == f"label:{project}-app"
    wait_for(lambda: _outputs(database, "who"), 20, "a finished run")
    assert set(_outputs(database, "who")) <= _hostnames(project)  # ran in the service

    run("stop")
    wait_for(lambda: not store.job("who").enabled, 5, "the job disabled by stop")
    stopped = len(all_runs(database, "who"))
    time.sleep(2)
    assert len(all_runs(database, "who")) <= stopped + 1  # at most the one fired meanwhile

    run("down", "-v")
    wait_for(lambda: "who" not in {j.name for j in store.jobs()}, 5, "the job gone after down")
    assert all_runs(database, "who")  # its history stays


def test_the_replicas_of_a_scaled_service_make_one_job_run_in_one_replica(
    start_service: Any, database: Database, compose: tuple[str, Compose]
) -> None:
    project, run = compose
    service = start_service(
        env={
            "ORCHESTRATOR_LABEL_JOBS": "on",
            "ORCHESTRATOR_LABEL_FILTER": f"com.docker.compose.project={project}",
        }
    )
    wait_for(lambda: "started with" in service.output(), 60, "the service up")
    store = Store(database)
    run("up", "-d", "--scale", "app=2")
    wait_for(lambda: len(_hostnames(project)) == 2, 30, "two replicas")
    wait_for(lambda: len(_outputs(database, "who")) >= 4, 30, "four finished runs")
    assert [j.name for j in store.jobs() if j.source == f"label:{project}-app"] == ["who"]
    runs = all_runs(database, "who")
    moments = [r.scheduled_for for r in runs]
    assert len(moments) == len(set(moments))  # one run per fire, not one per replica
    for output in _outputs(database, "who"):
        assert output in _hostnames(project)  # each in one replica (its hostname alone)

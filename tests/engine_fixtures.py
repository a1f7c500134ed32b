"""Fixtures and helpers for tests on the real engine (a pytest plugin: see tests/conftest.py).

A real Docker engine, and removal of everything a test created, found by its label."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

TEST_LABEL = "orchestrator.test"
JOB_IMAGE = os.environ.get("ORCHESTRATOR_JOB_IMAGE", "local/busybox:latest")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as error:  # the SDK raises several kinds here
        if os.environ.get("CI"):
            pytest.fail(f"no Docker engine in CI: {error}")
        pytest.skip(f"no Docker engine: {error}")
    yield client
    client.close()


@pytest.fixture
def test_label(docker_client: Any) -> Iterator[dict[str, str]]:
    """Labels to put on whatever a test creates; all of it is removed afterwards."""
    value = uuid.uuid4().hex
    yield {TEST_LABEL: value}
    selector = {"label": f"{TEST_LABEL}={value}"}
    for container in docker_client.containers.list(all=True, filters=selector):
        container.remove(force=True)
    for network in docker_client.networks.list(filters=selector):
        network.remove()
    docker_client.volumes.prune(filters=selector)


@pytest.fixture
def make_launcher(database_url: str, test_label: dict[str, str]) -> Iterator[Any]:
    """RunLaunchers on the test database whose containers carry the test label."""
    from orchestrator.engine import DockerEngine
    from orchestrator.launcher import LaunchSettings, RunLauncher
    from orchestrator.selfcontainer import locate_self
    from orchestrator.store.database import Database

    opened: list[Any] = []

    def make(**settings: Any) -> RunLauncher:
        database = Database(database_url)
        engine = DockerEngine.from_env()
        opened.extend([database, engine])
        options = {"extra_labels": tuple(test_label.items()), **settings}
        return RunLauncher(database, engine, locate_self(engine, None), LaunchSettings(**options))

    yield make
    for thing in opened:
        thing.dispose() if hasattr(thing, "dispose") else thing.close()


@pytest.fixture
def docker_cli(database_url: str, test_label: dict[str, str]) -> Any:
    """The CLI on the test database; its job containers carry the test label."""
    from tests.conftest import Cli

    ((key, value),) = test_label.items()
    return Cli(database_url, env={"ORCHESTRATOR_CONTAINER_LABELS": f"{key}={value}"})


def job_spec(**fields: Any) -> Any:
    from orchestrator.spec import parse_job

    return parse_job({"schedule": "@daily", "image": JOB_IMAGE, **fields})


def apply_jobs(database_url: str, *specs: Any) -> None:
    from orchestrator.spec import LoadedJob
    from orchestrator.store.database import Database
    from orchestrator.store.jobs import JobRepository

    database = Database(database_url)
    with database.session() as session:
        JobRepository(session).apply([LoadedJob(spec, "test") for spec in specs])
    database.dispose()


SCHEDULER_IMAGE = "local/orchestrator:test"


@pytest.fixture(scope="session")
def scheduler_image(docker_client: Any) -> str:
    """The scheduler image built from this tree, by the script operators use."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "build-images.sh"
    result = subprocess.run(
        [str(script), SCHEDULER_IMAGE],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "ORCHESTRATOR_SKIP_POSTGRES_IMAGE": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return SCHEDULER_IMAGE

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
    # Named ones too: prune leaves named volumes alone on engines from API 1.42 up, and
    # a volume made with driver options (a bind to /etc) was seen left on 1.41.
    for volume in docker_client.volumes.list(filters=selector):
        volume.remove(force=True)


@pytest.fixture
def make_launcher(database_url: str, test_label: dict[str, str]) -> Iterator[Any]:
    """RunLaunchers on the test database whose containers carry the test label."""
    from orchestrator.engine import DockerEngine
    from orchestrator.engine.selfcontainer import locate_self
    from orchestrator.runner import LaunchSettings, RunLauncher
    from orchestrator.store.database import Database
    from orchestrator.store.facade import Store

    opened: list[Any] = []

    def make(container_id: str | None = None, **settings: Any) -> RunLauncher:
        """`container_id`: the container this launcher takes for its own (the setting)."""
        database = Database(database_url)
        engine = DockerEngine.from_env()
        opened.extend([database, engine])
        options = {"extra_labels": tuple(test_label.items()), **settings}
        where = locate_self(engine, container_id)
        return RunLauncher(Store(database), engine, where, LaunchSettings(**options))

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


SCHEDULER_IMAGE = os.environ.get("ORCHESTRATOR_TEST_SCHEDULER_IMAGE", "local/orchestrator:test")


@pytest.fixture(scope="session")
def scheduler_image(docker_client: Any) -> str:
    """The scheduler image built from this tree, by the script operators use."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "build-images.sh"
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


class ContainerEvents:
    """The engine's own account of the containers carrying `labels`, from its event
    stream, collected live (the engine keeps only its last few hundred events)."""

    def __init__(self, client: Any, labels: dict[str, str]) -> None:
        import threading

        self.events: list[dict[str, Any]] = []
        selector = [f"{key}={value}" for key, value in labels.items()]
        self._stream = client.events(decode=True, filters={"type": "container", "label": selector})
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        try:
            for event in self._stream:
                self.events.append(event)
        except Exception:  # the stream is closed under us at the end (or the engine restarts)
            return

    def close(self) -> None:
        self._stream.close()
        self._thread.join(5)

    def containers_by_run(self, action: str = "create") -> dict[int, set[str]]:
        """Run id -> the ids of the containers of that run that saw `action`."""
        found: dict[int, set[str]] = {}
        for event in self.events:
            if event.get("Action") != action:
                continue
            run = (event.get("Actor", {}).get("Attributes") or {}).get("orchestrator.run", "")
            if run.isdigit():
                found.setdefault(int(run), set()).add(str(event["Actor"]["ID"]))
        return found

    def doubled(self) -> dict[int, set[str]]:
        """Runs that ever had more than one container started."""
        return {run: ids for run, ids in self.containers_by_run("start").items() if len(ids) > 1}


@pytest.fixture
def container_events(docker_client: Any, test_label: dict[str, str]) -> Iterator[ContainerEvents]:
    events = ContainerEvents(docker_client, test_label)
    yield events
    events.close()

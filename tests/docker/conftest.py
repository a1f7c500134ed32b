"""A real Docker engine, and removal of everything a test created, found by its label."""

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

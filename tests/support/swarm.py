"""A single-node swarm for the Swarm backend's tests, made on loopback and left as found.

Tests that use it carry the `swarm` marker: they change the engine's mode, so CI runs them
in its serial stage, one at a time.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest


def _swarm_state() -> str:
    return subprocess.run(
        ["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.fixture(scope="session")
def swarm() -> Iterator[None]:
    """The engine as a swarm's manager; left again only if this fixture made it one."""
    made = False
    if _swarm_state() != "active":
        subprocess.run(
            ["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"],
            capture_output=True,
            check=True,
        )
        made = True
    yield
    if made:
        subprocess.run(["docker", "swarm", "leave", "--force"], capture_output=True, check=True)


@pytest.fixture
def swarm_label(
    swarm: None, test_label: dict[str, str], docker_client: Any
) -> Iterator[dict[str, str]]:
    """test_label, and the services that carry it removed (before its containers go)."""
    yield test_label
    ((key, value),) = test_label.items()
    for service in docker_client.services.list(filters={"label": f"{key}={value}"}):
        service.remove()

"""The engine and the local job image that .ci/run provides, and that the example jobs use."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from orchestrator.spec import load_jobs
from tests.support.engines import JOB_IMAGE

pytestmark = pytest.mark.docker
EXAMPLES = Path(__file__).resolve().parents[3] / "jobs"


def test_the_job_image_runs_a_command(docker_client: Any, test_label: dict[str, str]) -> None:
    output = docker_client.containers.run(
        JOB_IMAGE, ["sh", "-c", "echo hello from $(id -un)"], labels=test_label, remove=True
    )
    assert output == b"hello from root\n"


def test_the_port_leasing_example_serves_on_a_published_port(
    docker_client: Any, test_label: dict[str, str]
) -> None:
    (job,) = [j.spec for j in load_jobs([EXAMPLES]) if j.spec.name == "heartbeat-server"]
    assert job.command is not None
    container = docker_client.containers.run(
        job.image,
        list(job.command),
        environment={"ORCHESTRATOR_PORT_8080": "published"},
        ports={"8080/tcp": ("127.0.0.1", None)},
        labels=test_label,
        detach=True,
    )
    container.reload()
    host_port = int(container.ports["8080/tcp"][0]["HostPort"])
    body = b""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{host_port}/", timeout=2) as answer:
                body = answer.read()
                break
        except OSError:
            time.sleep(0.2)
    assert body == b"ok\n"
    assert b"leased host port published" in container.logs()

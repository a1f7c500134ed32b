"""Runs on the Swarm backend (ORCHESTRATOR_BACKEND=swarm): each run a replicated-job
service on a single-node swarm made by the test (tests/support/swarm.py). What differs
with several nodes is argued in docs/swarm.md, not claimed here."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from orchestrator.engine import JOB_LABEL, MANAGED_LABEL, RUN_LABEL, ContainerSpec
from orchestrator.engine.errors import EngineError
from tests.support.engines import JOB_IMAGE, apply_jobs, job_spec

pytestmark = [pytest.mark.docker, pytest.mark.swarm]


@pytest.fixture
def swarm_cli(database_url: str, swarm_label: dict[str, str]) -> Any:
    from tests.conftest import Cli

    ((key, value),) = swarm_label.items()
    return Cli(
        database_url,
        env={
            "ORCHESTRATOR_CONTAINER_LABELS": f"{key}={value}",
            "ORCHESTRATOR_BACKEND": "swarm",
        },
    )


def services_of(docker_client: Any, swarm_label: dict[str, str]) -> list[Any]:
    ((key, value),) = swarm_label.items()
    return docker_client.services.list(filters={"label": f"{key}={value}"})


def test_a_run_is_a_service_whose_exit_and_output_are_recorded_then_removed(
    swarm_cli: Any, database_url: str, docker_client: Any, swarm_label: dict[str, str]
) -> None:
    apply_jobs(
        database_url,
        job_spec(name="speaks", command=["sh", "-c", "echo one; echo two >&2; exit 4"]),
        job_spec(name="late", command=["sleep", "30"], timeout="1s"),
    )
    failed = swarm_cli("jobs", "run", "speaks", expect=4)
    assert failed.stdout == "one\ntwo\n"
    assert failed.stderr.strip().endswith("failed: exit status 4")
    assert "timed_out" in swarm_cli("jobs", "run", "late", expect=124).stderr
    runs = json.loads(swarm_cli("runs", "list", "--json").stdout)
    assert [(r["job"], r["status"], r["exit_code"]) for r in runs] == [
        ("late", "timed_out", 137),
        ("speaks", "failed", 4),
    ]
    shown = json.loads(swarm_cli("runs", "show", str(runs[1]["id"]), "--json").stdout)
    assert shown["output"] == "one\ntwo\n" and shown["output_truncated"] is False
    assert services_of(docker_client, swarm_label) == []


def test_a_bind_path_is_refused_on_the_swarm_backend(
    swarm_cli: Any,
    database_url: str,
    docker_client: Any,
    swarm_label: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The job that binds a host path: another node has not that path."""
    data = tmp_path_factory.mktemp("data")
    apply_jobs(database_url, job_spec(name="binds", volumes=[f"{data}:/data:ro"]))
    refused = swarm_cli("jobs", "run", "binds", expect=125)
    assert "the bind of a host path to /data is refused on the swarm backend" in refused.stderr
    assert services_of(docker_client, swarm_label) == []


def test_a_task_no_node_accepts_fails_within_the_pending_timeout(
    swarm_label: dict[str, str], docker_client: Any
) -> None:
    """The job whose constraint no node meets: never pending for ever."""
    from orchestrator.engine.swarm import SwarmEngine

    engine = SwarmEngine.from_env(pending_timeout=3)
    job = f"nowhere-{uuid.uuid4().hex[:8]}"
    spec = ContainerSpec(
        name=job,
        image=JOB_IMAGE,
        labels={**swarm_label, MANAGED_LABEL: "true", JOB_LABEL: job, RUN_LABEL: "1"},
        command=["true"],
        constraints=["node.labels.no-such-zone==mars"],
    )
    handle = engine.create(spec)
    started = time.monotonic()
    with pytest.raises(EngineError, match="did not start the task within 3 s: no suitable node"):
        engine.start(handle)
    assert time.monotonic() - started < 15
    assert engine.state(handle) is None  # its service is gone with it
    engine.close()


def test_a_job_placed_where_no_node_is_fails_with_the_swarms_reason(
    swarm_cli: Any, database_url: str, docker_client: Any, swarm_label: dict[str, str]
) -> None:
    apply_jobs(
        database_url,
        job_spec(name="mars", placement={"constraints": ["node.labels.zone==mars"]}),
    )
    swarm_cli.env["ORCHESTRATOR_SWARM_PENDING_TIMEOUT"] = "2s"
    started = time.monotonic()
    refused = swarm_cli("jobs", "run", "mars", expect=125)
    assert "the swarm did not start the task within 2 s: no suitable node" in refused.stderr
    assert time.monotonic() - started < 30
    assert services_of(docker_client, swarm_label) == []


def test_placement_is_refused_on_the_docker_backend(docker_cli: Any, database_url: str) -> None:
    apply_jobs(
        database_url, job_spec(name="placed", placement={"constraints": ["node.role==manager"]})
    )
    refused = docker_cli("jobs", "run", "placed", expect=125)
    assert "placement is for the swarm backend" in refused.stderr

"""Defaults that contain a job, against the real engine: a fork bomb stops at the pids
limit (the service's default, or the job's own), and a pinned host port below 1024 is
refused at launch without the service's grant."""

from __future__ import annotations

import re
from typing import Any

import pytest

from orchestrator.records import RunRecord, RunStatus, RunTrigger
from tests.support.engines import JOB_IMAGE

pytestmark = pytest.mark.docker

# Forks sleepers until a fork fails (the subshell then dies), then says how many it got:
# `read` and `echo` are builtins, so the count is told with every pid still taken.
FORK_BOMB = (
    "( i=0; while [ $i -lt 2000 ]; do sleep 30 & i=$((i+1)); echo $i > /tmp/n; done ) "
    "2>/dev/null; read n < /tmp/n; echo started $n"
)


def job(**fields: Any) -> Any:
    from orchestrator.spec import parse_job

    return parse_job({"schedule": "@daily", "image": JOB_IMAGE, **fields})


def run_kept(launcher: Any, spec: Any, docker_client: Any) -> tuple[RunRecord, dict[str, Any]]:
    """The run, and its container's HostConfig (the container is kept, then removed)."""
    run = launcher.execute(launcher.queue(spec, RunTrigger.MANUAL), spec)
    assert run.container_id, run.error
    try:
        host_config = docker_client.api.inspect_container(run.container_id)["HostConfig"]
    finally:
        docker_client.api.remove_container(run.container_id, force=True)
    return run, host_config


def started(run: RunRecord) -> int:
    found = re.search(r"started (\d+)", run.output or "")
    assert found, (run.status, run.error, run.output)
    return int(found[1])


def test_a_fork_bomb_stops_at_the_default_pids_limit(
    make_launcher: Any, docker_client: Any
) -> None:
    _, shipped = run_kept(make_launcher(keep_containers=True), job(name="quiet"), docker_client)
    assert shipped["PidsLimit"] == 1024
    launcher = make_launcher(keep_containers=True, default_pids_limit=100)
    run, host_config = run_kept(
        launcher, job(name="bomb", command=["sh", "-c", FORK_BOMB]), docker_client
    )
    assert host_config["PidsLimit"] == 100
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert 90 <= started(run) < 100  # the shell and its subshell hold the rest


def test_a_job_sets_its_own_pids_limit(make_launcher: Any, docker_client: Any) -> None:
    launcher = make_launcher(keep_containers=True, default_pids_limit=100)
    spec = job(name="threads", command=["sh", "-c", FORK_BOMB], resources={"pids": 160})
    run, host_config = run_kept(launcher, spec, docker_client)
    assert host_config["PidsLimit"] == 160
    assert 150 <= started(run) < 160


def test_a_pinned_low_port_needs_the_grant_at_launch(make_launcher: Any) -> None:
    spec = job(name="squatter", ports=["1023:8080"], command=["true"])
    closed = make_launcher()
    refused = closed.execute(closed.queue(spec, RunTrigger.MANUAL), spec)
    assert refused.status is RunStatus.FAILED and refused.container_id is None
    assert refused.error == (
        "job 'squatter': ports[0]: host port 1023 is below 1024, where the host's own "
        "services listen: pin one from 1024 up, or set ORCHESTRATOR_ALLOW_LOW_PORTS=true"
    )
    granted = make_launcher(allow_low_ports=True)
    allowed = granted.execute(granted.queue(spec, RunTrigger.MANUAL), spec)
    assert allowed.status is RunStatus.SUCCEEDED, allowed.error
    assert allowed.ports == {"8080/tcp": 1023}

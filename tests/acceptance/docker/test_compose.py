"""The whole chain as operators deploy it: deploy/compose.yaml up, the scheduler in a
container with the host's socket, jobs firing as SIBLING containers, seen from the host."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.engines import JOB_IMAGE

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]
POSTGRES_IMAGES = ("postgres:16", "local/postgres:15")


def compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if os.environ.get("CI"):
        pytest.fail("neither docker-compose nor docker compose is installed")
    pytest.skip("no compose")


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (subprocess.CalledProcessError, OSError, ValueError):
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


API_TOKEN = secrets.token_hex(16)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Stack:
    def __init__(self, files: list[str], env: dict[str, str], project: str) -> None:
        self.base = [*compose_command(), "-p", project, *(a for f in files for a in ("-f", f))]
        self.env = env
        self.project = project
        self.http = ""

    def api(
        self, path: str, token: str | None = API_TOKEN, body: bytes | None = None
    ) -> tuple[int, Any]:
        request = urllib.request.Request(self.http + path, data=body)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def __call__(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [*self.base, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, f"compose {' '.join(args)}: {result.stdout}{result.stderr}"
        return result.stdout

    def container(self, service: str) -> str:
        return self("ps", "-q", service).strip()

    def orchestrator(self, *args: str) -> str:
        result = subprocess.run(
            ["docker", "exec", self.container("scheduler"), "orchestrator", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout


@pytest.fixture
def stack(
    scheduler_image: str, docker_client: Any, test_label: dict[str, str], tmp_path: Path
) -> Iterator[tuple[Stack, Path]]:
    postgres = next(
        (
            image
            for image in POSTGRES_IMAGES
            if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode
            == 0
        ),
        None,
    )
    if postgres is None:
        if os.environ.get("CI"):
            pytest.fail("no PostgreSQL image (.ci/run builds local/postgres:15)")
        pytest.skip("no PostgreSQL image: scripts/postgres-image.sh")
    data, jobs = tmp_path / "data", tmp_path / "jobs"
    (data / "out").mkdir(parents=True)
    jobs.mkdir()
    (jobs / "e2e.yaml").write_text(f"""
- name: writer
  schedule: "*/4 * * * * *"
  image: {JOB_IMAGE}
  command: [sh, -c, "echo run $ORCHESTRATOR_RUN_ID > /out/written.txt; mkdir -p /www;
            echo answer-$ORCHESTRATOR_PORT_8080 > /www/index.html; httpd -p 8080 -h /www; sleep 8"]
  volumes: ["/data/out:/out"]
  ports: ["8080"]
  concurrency: forbid
  catchup: none
- name: long
  schedule: "0 0 1 1 *"
  image: {JOB_IMAGE}
  command: [sh, -c, "echo begin; sleep 12; echo finish"]
""")
    ((key, value),) = test_label.items()
    env = {
        **os.environ,
        "ORCHESTRATOR_IMAGE": scheduler_image,
        "POSTGRES_IMAGE": postgres,
        "ORCHESTRATOR_DATA": str(data),
        "ORCHESTRATOR_JOBS": str(jobs),
        "ORCHESTRATOR_CONTAINER_LABELS": f"{key}={value}",
        "ORCHESTRATOR_PORT_RANGE": "23000-23099",
        "POSTGRES_PASSWORD": secrets.token_urlsafe(12),
        "ORCHESTRATOR_DB_PASSWORD": 'it\'s-"quoted"-' + secrets.token_hex(4),
        "ORCHESTRATOR_API_TOKEN": API_TOKEN,
        "ORCHESTRATOR_HTTP_PORT": str(free_port()),
    }
    project = f"orche2e{secrets.token_hex(3)}"
    compose = Stack([str(ROOT / "deploy" / "compose.yaml")], env, project)
    compose.http = f"http://127.0.0.1:{env['ORCHESTRATOR_HTTP_PORT']}"
    try:
        yield compose, data
    finally:
        compose("down", "-v", "--remove-orphans")


def test_the_compose_stack_runs_jobs_as_siblings(
    stack: tuple[Stack, Path], docker_client: Any, test_label: dict[str, str]
) -> None:
    compose, data = stack
    compose("up", "-d")
    scheduler = wait_for(lambda: compose.container("scheduler"), 120, "the scheduler container")
    hardened = docker_client.api.inspect_container(scheduler)["HostConfig"]
    assert hardened["ReadonlyRootfs"] is True
    assert hardened["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in hardened["SecurityOpt"]
    superuser = subprocess.run(
        [
            "docker",
            "exec",
            compose.container("postgres"),
            "psql",
            "-U",
            "postgres",
            "-tAc",
            "SELECT rolsuper FROM pg_roles WHERE rolname = 'orchestrator'",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert superuser == "f"  # the scheduler's role exists and is not a superuser
    ((key, value),) = test_label.items()

    def sibling() -> Any:
        found = docker_client.containers.list(
            filters={"label": [f"{key}={value}", "orchestrator.job=writer"]}
        )
        return found[0] if found else None

    job_container = wait_for(sibling, 120, "the job's sibling container")
    # A SIBLING: the host's own engine lists it, beside the scheduler, not inside it.
    running = {c.id for c in docker_client.containers.list()}
    assert any(c.startswith(scheduler[:12]) for c in running)
    assert job_container.id in running
    assert job_container.labels["orchestrator.managed"] == "true"
    # It wrote through /data/out at the HOST path behind the scheduler's /data.
    written = wait_for(lambda: (data / "out" / "written.txt").read_text(), 30, "the job's file")
    assert written.startswith("run ")
    # Its leased port answers from the host.
    job_container.reload()
    port = int(job_container.ports["8080/tcp"][0]["HostPort"])
    assert 23000 <= port <= 23099
    answer = wait_for(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3).read(),
        30,
        "the job's port",
    )
    assert answer.decode().strip() == f"answer-{port}"

    # The scheduler's own CLI, inside its container, has the run as succeeded.
    def succeeded() -> Any:
        runs = json.loads(compose.orchestrator("runs", "list", "--job", "writer", "--json"))
        return [r for r in runs if r["status"] == "succeeded"]

    done = wait_for(succeeded, 60, "a succeeded run")
    assert done[0]["ports"]["8080/tcp"] in range(23000, 23100)
    health = subprocess.run(
        ["docker", "exec", scheduler, "orchestrator", "health"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert health.returncode == 0, health.stderr
    # The API is published on the host's loopback, needs the token, and answers as the
    # CLI does; the container's healthcheck asks its /healthz.
    assert compose.api("/api/runs?job=writer", token=None)[0] == 401
    status, runs = compose.api("/api/runs?job=writer")
    assert status == 200 and done[-1]["id"] in [run["id"] for run in runs]
    assert compose.api("/healthz", token=None)[0] == 200
    wait_for(
        lambda: (
            docker_client.api.inspect_container(scheduler)["State"]["Health"]["Status"] == "healthy"
        ),
        60,
        "the healthcheck through /healthz",
    )
    published = docker_client.api.inspect_container(scheduler)["HostConfig"]["PortBindings"]
    assert [binding["HostIp"] for binding in published["8080/tcp"]] == ["127.0.0.1"]
    _jobs_cannot_join_the_internal_network(compose, docker_client, scheduler)

    # Restart the scheduler container in the middle of a long run: it is reattached.
    compose.orchestrator("jobs", "disable", "writer")
    queued = compose.orchestrator("jobs", "run", "long", "--detach")
    run_id = int(queued.split()[2])

    def long_status() -> str:
        return str(
            json.loads(compose.orchestrator("runs", "show", str(run_id), "--json"))["status"]
        )

    wait_for(lambda: long_status() == "running", 60, "the long run to start")
    compose("restart", "scheduler", timeout=120)
    wait_for(lambda: long_status() == "succeeded", 90, "the long run to be reattached and end")
    shown = json.loads(compose.orchestrator("runs", "show", str(run_id), "--json"))
    assert shown["output"] == "begin\nfinish\n"
    assert len(json.loads(compose.orchestrator("runs", "list", "--job", "long", "--json"))) == 1

    # No run is in flight now (writer is disabled, long has ended): stopping the stack
    # leaves no managed container behind, running or stopped.
    compose("down", "-v", "--remove-orphans")
    assert (
        docker_client.containers.list(
            all=True, filters={"label": [f"{key}={value}", "orchestrator.managed=true"]}
        )
        == []
    )
    assert compose("ps", "-q").strip() == ""


def _jobs_cannot_join_the_internal_network(
    compose: Stack, docker_client: Any, scheduler: str
) -> None:
    """The attack: a job author with the write token puts a job on the stack's internal
    network, where PostgreSQL and the socket proxy are. Refused in one line; nothing is
    written or created."""
    internal = f"{compose.project}_internal"
    network = docker_client.api.inspect_network(internal)
    assert network["Internal"] is True  # no way out of it either
    assert set(network["Containers"]) == {compose.container(s) for s in ("scheduler", "postgres")}
    for named in (internal, network["Id"][:12]):
        text = f"name: spy\nschedule: '* * * * * *'\nimage: {JOB_IMAGE}\nnetwork: '{named}'\n"
        status, answer = compose.api("/api/jobs/apply", body=text.encode())
        assert status == 403, answer
        assert answer["error"] == (
            f"job 'spy': network '{named}' is not in ORCHESTRATOR_ALLOWED_NETWORKS "
            "(orchestrator-jobs; bridge and none always are): add it there to allow it"
        )
    assert compose.api("/api/jobs/spy")[0] == 404
    # Without the allow-list, the scheduler (in its container, found by itself) still
    # refuses its own network, asked of the engine.
    spy = f"name: spy\nschedule: '@daily'\nimage: {JOB_IMAGE}\nnetwork: {internal}\n"
    written = ["docker", "exec", "-i", scheduler, "sh", "-c", "cat > /tmp/spy.yaml"]
    subprocess.run(written, input=spy, text=True, check=True, timeout=30)
    unlisted = ["docker", "exec", "-e", "ORCHESTRATOR_ALLOWED_NETWORKS=", scheduler]
    refused = subprocess.run(
        [*unlisted, "orchestrator", "jobs", "apply", "/tmp/spy.yaml"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.strip().splitlines() == [
        f"job 'spy': network '{internal}' is a network of the scheduler's own container: a "
        "job on it reaches the scheduler and what it talks to (its database, the engine's "
        "socket proxy); this service does not permit that (list it in "
        "ORCHESTRATOR_ALLOWED_NETWORKS to allow it)"
    ]
    assert docker_client.containers.list(all=True, filters={"label": "orchestrator.job=spy"}) == []


def test_the_stack_refuses_to_start_without_passwords(tmp_path: Path) -> None:
    for missing in ("POSTGRES_PASSWORD", "ORCHESTRATOR_DB_PASSWORD", "ORCHESTRATOR_API_TOKEN"):
        env = {
            **os.environ,
            "POSTGRES_PASSWORD": "a",
            "ORCHESTRATOR_DB_PASSWORD": "b",
            "ORCHESTRATOR_API_TOKEN": "c" * 32,
        }
        del env[missing]
        result = subprocess.run(
            [*compose_command(), "-f", str(ROOT / "deploy" / "compose.yaml"), "config"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode != 0
        assert f"set {missing}" in result.stderr

"""The host policy, secrets and masking against the real engine, on the host."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator.records import RunRecord, RunStatus, RunTrigger
from tests.support.engines import JOB_IMAGE

pytestmark = pytest.mark.docker
SECRET = "Tr0ub4dor-3-correct-horse"


def run_once(launcher: Any, spec: Any) -> RunRecord:
    run = launcher.queue(spec, RunTrigger.MANUAL)
    result: RunRecord = launcher.execute(run, spec)
    return result


def job(**fields: Any) -> Any:
    from orchestrator.spec import parse_job

    return parse_job({"schedule": "@daily", "image": JOB_IMAGE, **fields})


SEE_SOCKET = "test -S /h/docker.sock && echo GOT-THE-SOCKET"


@pytest.mark.parametrize("source", ["/var/run", "/run", "/var"])
def test_a_directory_that_holds_the_socket_needs_both_keys(make_launcher: Any, source: str) -> None:
    # (through /var the socket sits behind the host's link /var/run -> /run, which a job
    # cannot follow; /var still holds every container's files in /var/lib/docker)
    check = "ls /h/lib >/dev/null && echo GOT-THE-SOCKET" if source == "/var" else SEE_SOCKET
    spec = job(name="peek", volumes=[f"{source}:/h:ro"], command=["sh", "-c", check])
    refused = run_once(make_launcher(), spec)
    assert refused.status is RunStatus.FAILED and refused.container_id is None
    assert refused.error and "asks for docker_socket" in refused.error
    assert f"volume {os.path.realpath(source)}:/h" in refused.error
    allowed = run_once(make_launcher(allow_privileged_jobs=True), spec)
    assert allowed.status is RunStatus.SUCCEEDED, allowed.error
    assert "GOT-THE-SOCKET" in (allowed.output or "")  # the rule guards a real socket


def test_a_symlink_to_the_socket_directory_is_followed_before_the_check(
    make_launcher: Any, tmp_path: Path
) -> None:
    link = tmp_path / "innocent"
    link.symlink_to("/var/run")
    spec = job(name="linked", volumes=[f"{link}:/h:ro"], command=["true"])
    refused = run_once(make_launcher(), spec)
    assert refused.status is RunStatus.FAILED
    assert refused.error and "asks for docker_socket" in refused.error


def test_network_host_is_the_host_network_grant(make_launcher: Any) -> None:
    spec = job(name="hostnet", network="host", command=["hostname"])
    refused = run_once(make_launcher(), spec)
    assert refused.status is RunStatus.FAILED and refused.container_id is None
    assert refused.error and "asks for host_network" in refused.error
    allowed = run_once(make_launcher(allow_privileged_jobs=True), spec)
    assert allowed.status is RunStatus.SUCCEEDED
    assert (allowed.output or "").strip() == os.uname().nodename  # really the host's


def test_binds_outside_the_allowed_host_paths_are_refused(
    make_launcher: Any, tmp_path: Path
) -> None:
    (tmp_path / "ok" / "sub").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    launcher = make_launcher(allowed_host_paths=(str(tmp_path / "ok"),))
    inside = run_once(launcher, job(name="in", volumes=[f"{tmp_path}/ok/sub:/x"], command=["true"]))
    assert inside.status is RunStatus.SUCCEEDED, inside.error
    outside = run_once(launcher, job(name="out", volumes=[f"{tmp_path}/other:/x"]))
    assert outside.status is RunStatus.FAILED and outside.container_id is None
    assert outside.error and "outside ORCHESTRATOR_ALLOWED_HOST_PATHS" in outside.error


def test_docker_socket_mounts_the_socket_docker_host_names(make_launcher: Any) -> None:
    spec = job(
        name="sock",
        docker_socket=True,
        command=["sh", "-c", "test -S /var/run/docker.sock && echo SOCKET"],
    )
    real = os.path.realpath("/var/run/docker.sock")
    given = run_once(
        make_launcher(allow_privileged_jobs=True, engine_socket=real, engine_address="x"), spec
    )
    assert given.status is RunStatus.SUCCEEDED and given.output == "SOCKET\n"
    over_tcp = run_once(
        make_launcher(
            allow_privileged_jobs=True, engine_socket=None, engine_address="tcp://proxy:2375"
        ),
        spec,
    )
    assert over_tcp.status is RunStatus.FAILED and over_tcp.container_id is None
    assert over_tcp.error and "reaches the engine at tcp://proxy:2375" in over_tcp.error


def _stored_bytes(database_url: str) -> bytes:
    """Everything the database holds, as bytes: the SQLite files, or a pg_dump."""
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite:///"))
        return b"".join(
            candidate.read_bytes()
            for candidate in (path, Path(f"{path}-wal"))
            if candidate.exists()
        )
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    result = subprocess.run(
        [
            "pg_dump",
            "-h",
            url.host or "127.0.0.1",
            "-p",
            str(url.port or 5432),
            "-U",
            url.username or "postgres",
            url.database or "",
        ],
        env={**os.environ, "PGPASSWORD": url.password or ""},
        capture_output=True,
        check=True,
        timeout=60,
    )
    return result.stdout


def test_secrets_reach_the_job_masked_and_are_never_stored(
    docker_cli: Any, write_jobs: Any, tmp_path: Path, database_url: str
) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "db_password").write_text(SECRET + "\n")
    env_file = secrets_dir / "app.env"  # env_file is read from the secrets directory
    env_file.write_text(f"API_TOKEN=tok-{SECRET}\nMODE=0644\n")
    jobs = write_jobs(
        "secret.yaml",
        f"""
name: uses-secrets
schedule: "@daily"
image: {JOB_IMAGE}
environment: {{PLAIN_PASSWORD: shown-masked, COLOUR: blue}}
secrets:
  - {{name: db_password, env: DB_PASSWORD, file: /run/secrets/db}}
env_file: {env_file}
command:
  - sh
  - -c
  - >-
    echo "env=$DB_PASSWORD"; echo "file=$(cat /run/secrets/db)";
    echo "token=$API_TOKEN mode=$MODE";
    test "$DB_PASSWORD" = "$(cat /run/secrets/db)" && echo SAME;
    printf '%s' "$DB_PASSWORD" | cut -c1-5
""",
    )
    docker_cli.env["ORCHESTRATOR_SECRETS_DIR"] = str(secrets_dir)
    docker_cli("jobs", "apply", str(jobs))
    ran = docker_cli("jobs", "run", "uses-secrets")
    assert SECRET not in ran.stdout
    assert ran.stdout == "env=***\nfile=***\ntoken=*** mode=0644\nSAME\nTr0ub\n"
    shown = docker_cli("jobs", "show", "uses-secrets", "--json").stdout
    assert '"PLAIN_PASSWORD": "***"' in shown and '"COLOUR": "blue"' in shown
    logs = docker_cli("runs", "logs", "1").stdout
    assert "env=***" in logs and SECRET not in logs
    stored = _stored_bytes(database_url)
    assert b"Tr0ub" in stored  # the dump is real: the unmasked prefix the job printed is there
    assert SECRET.encode() not in stored


def test_a_missing_secret_fails_the_run_with_one_line_and_validate_warns(
    docker_cli: Any, write_jobs: Any, tmp_path: Path
) -> None:
    jobs = write_jobs(
        "missing.yaml",
        f"""
name: needs-secret
schedule: "@daily"
image: {JOB_IMAGE}
secrets: [{{name: absent, env: X}}]
command: ["true"]
""",
    )
    docker_cli.env["ORCHESTRATOR_SECRETS_DIR"] = str(tmp_path)
    checked = docker_cli("jobs", "validate", str(jobs))
    assert "warning:" in checked.stderr and "secret 'absent' is not in" in checked.stderr
    docker_cli("jobs", "apply", str(jobs))
    ran = docker_cli("jobs", "run", "needs-secret", expect=125)
    (line,) = ran.stderr.strip().splitlines()
    assert f"secret 'absent' cannot be read from {tmp_path}/absent" in line


def test_root_and_other_containers_namespaces_are_refused_at_validate(
    docker_cli: Any, write_jobs: Any
) -> None:
    for name, extra in (("root", "volumes: ['/:/host']"), ("ns", "network: 'container:db'")):
        path = write_jobs(f"{name}.yaml", f"name: {name}\nschedule: '@daily'\nimage: x\n{extra}\n")
        result = docker_cli("jobs", "validate", str(path), expect=2)
        assert "never allowed" in result.stderr and len(result.stderr.splitlines()) == 1


# --- networks: a job on the scheduler's own network reaches what the scheduler reaches ---

OWN_NETWORK = "is a network of the scheduler's own container"


@pytest.fixture
def scheduler_on_a_network(docker_client: Any, test_label: dict[str, str]) -> tuple[Any, Any]:
    """A network, and a container on it that the scheduler is told is its own (the
    ORCHESTRATOR_CONTAINER_ID setting): what the compose stack's internal network is."""
    import uuid

    network = docker_client.networks.create(f"orch-own-{uuid.uuid4().hex[:8]}", labels=test_label)
    serve = "mkdir /w && echo SCHEDULER-HERE > /w/index.html && httpd -f -p 8000 -h /w"
    standin = docker_client.containers.run(
        JOB_IMAGE, ["sh", "-c", serve], detach=True, labels=test_label, network=network.name
    )
    return network, standin


def _containers_of(docker_client: Any, test_label: dict[str, str], job_name: str) -> list[Any]:
    ((key, value),) = test_label.items()
    found: list[Any] = docker_client.containers.list(
        all=True, filters={"label": [f"{key}={value}", f"orchestrator.job={job_name}"]}
    )
    return found


def test_a_job_cannot_join_the_schedulers_network_by_name_id_or_id_prefix(
    make_launcher: Any,
    docker_client: Any,
    test_label: dict[str, str],
    scheduler_on_a_network: tuple[Any, Any],
) -> None:
    network, standin = scheduler_on_a_network
    launcher = make_launcher(container_id=standin.id, keep_containers=True)
    for named in (network.name, network.id, network.id[:12]):
        spec = job(name="spy", network=named, command=["true"])
        refused = run_once(launcher, spec)
        assert refused.status is RunStatus.FAILED and refused.container_id is None
        assert refused.error and refused.error.startswith(f"job 'spy': network {named!r}")
        assert OWN_NETWORK in refused.error
        assert "list it in ORCHESTRATOR_ALLOWED_NETWORKS" in refused.error
    assert _containers_of(docker_client, test_label, "spy") == []  # nothing was created
    # The one key: the operator lists it, and the same job joins it and reaches the
    # scheduler's container there (so the refusal above guarded a real way in).
    listed = make_launcher(container_id=standin.id, allowed_networks=(network.name,))
    standin.reload()
    address = standin.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    reach = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w5 {address} 8000 | tail -1"
    spy = job(name="spy", network=network.name, command=["sh", "-c", reach])
    allowed = run_once(listed, spy)
    assert allowed.status is RunStatus.SUCCEEDED, allowed.error
    assert allowed.output == "SCHEDULER-HERE\n"


def test_with_allowed_networks_set_only_those_networks_are_joined(
    make_launcher: Any, docker_client: Any, test_label: dict[str, str]
) -> None:
    import uuid

    listed, unlisted = (
        docker_client.networks.create(f"orch-{kind}-{uuid.uuid4().hex[:8]}", labels=test_label)
        for kind in ("listed", "unlisted")
    )
    launcher = make_launcher(allowed_networks=(listed.name,))  # on the host: no own network
    for named in (unlisted.name, unlisted.id[:12]):
        refused = run_once(launcher, job(name="other", network=named, command=["true"]))
        assert refused.status is RunStatus.FAILED and refused.container_id is None
        assert refused.error and "is not in ORCHESTRATOR_ALLOWED_NETWORKS" in refused.error
    assert _containers_of(docker_client, test_label, "other") == []
    check = "ip -o -4 addr show eth0 | grep -q inet && echo ON-IT"
    for named in (listed.name, "bridge"):
        ran = run_once(launcher, job(name="listed", network=named, command=["sh", "-c", check]))
        assert ran.status is RunStatus.SUCCEEDED, ran.error
        assert ran.output == "ON-IT\n"


def test_apply_refuses_the_schedulers_network_and_validate_the_unlisted_one(
    docker_cli: Any,
    write_jobs: Any,
    docker_client: Any,
    test_label: dict[str, str],
    scheduler_on_a_network: tuple[Any, Any],
) -> None:
    network, standin = scheduler_on_a_network
    docker_cli.env["ORCHESTRATOR_CONTAINER_ID"] = standin.id
    docker_cli("db", "upgrade")
    prefix = network.id[:10]
    spy = write_jobs(
        "spy.yaml", f"name: spy\nschedule: '@daily'\nimage: {JOB_IMAGE}\nnetwork: '{prefix}'\n"
    )
    refused = docker_cli("jobs", "apply", str(spy), expect=2)
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"job 'spy': network '{prefix}' (the engine's '{network.name}')")
    assert OWN_NETWORK in line
    assert docker_cli("jobs", "list", "--json").stdout.strip() == "[]"  # nothing written
    assert docker_cli("jobs", "apply", str(spy), "--dry-run", expect=2).stderr.strip() == line
    docker_cli.env["ORCHESTRATOR_ALLOWED_NETWORKS"] = "orchestrator-jobs"
    checked = docker_cli("jobs", "validate", str(spy), expect=2)
    assert checked.stderr.strip() == (
        f"job 'spy': network '{prefix}' is not in ORCHESTRATOR_ALLOWED_NETWORKS "
        "(orchestrator-jobs; bridge and none always are): add it there to allow it"
    )
    assert _containers_of(docker_client, test_label, "spy") == []


def test_the_api_refuses_a_job_on_the_schedulers_network_with_403(
    tmp_path: Path,
    docker_client: Any,
    test_label: dict[str, str],
    scheduler_on_a_network: tuple[Any, Any],
) -> None:
    from tests.acceptance.api.conftest import start_api_service, stop_api_service

    network, standin = scheduler_on_a_network
    ((_, label),) = test_label.items()
    service = start_api_service(
        tmp_path,
        f"sqlite:///{tmp_path / 'orchestrator.db'}",
        label,
        env={"ORCHESTRATOR_CONTAINER_ID": standin.id},
    )
    try:
        text = f"name: spy\nschedule: '* * * * * *'\nimage: IMAGE\nnetwork: {network.name}\n"
        refused = service.apply(text)
        assert refused.status_code == 403, refused.text
        error = refused.json()["error"]
        assert error.startswith(f"job 'spy': network '{network.name}' {OWN_NETWORK}")
        assert service.get("/api/jobs").json() == []
    finally:
        stop_api_service(service, docker_client)
    assert _containers_of(docker_client, test_label, "spy") == []


def test_a_scheduler_in_another_containers_network_namespace_guards_that_ones_networks(
    make_launcher: Any,
    docker_client: Any,
    test_label: dict[str, str],
    scheduler_on_a_network: tuple[Any, Any],
) -> None:
    # compose's `network_mode: service:x`: our container has no networks of its own.
    network, standin = scheduler_on_a_network
    beside = docker_client.containers.run(
        JOB_IMAGE,
        ["sleep", "600"],
        detach=True,
        labels=test_label,
        network_mode=f"container:{standin.id}",
    )
    launcher = make_launcher(container_id=beside.id)
    refused = run_once(launcher, job(name="spy", network=network.name, command=["true"]))
    assert refused.status is RunStatus.FAILED and refused.container_id is None
    assert refused.error and OWN_NETWORK in refused.error


def test_serve_refuses_a_jobs_folder_with_an_unlisted_network(
    tmp_path: Path, write_jobs: Any
) -> None:
    import sys

    folder = write_jobs(
        "spy.yaml", "name: spy\nschedule: '@daily'\nimage: x\nnetwork: deploy_internal\n"
    )
    env = {
        **os.environ,
        "ORCHESTRATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "ORCHESTRATOR_ALLOWED_NETWORKS": "orchestrator-jobs",
    }
    started = subprocess.run(
        [sys.executable, "-m", "orchestrator", "serve", "--jobs", str(folder.parent)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode == 2, started.stdout + started.stderr
    assert started.stderr.strip().splitlines()[-1] == (
        "job 'spy': network 'deploy_internal' is not in ORCHESTRATOR_ALLOWED_NETWORKS "
        "(orchestrator-jobs; bridge and none always are): add it there to allow it"
    )

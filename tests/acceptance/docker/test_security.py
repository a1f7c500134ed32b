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

"""The secrets policy at launch on the real engine: jobs that try to read the service's
own files (by name, through a link, a hard link, a `../` in the setting), a secret not
granted to them, and a job that prints its secret-looking variable, followed live by the
real executable and looked for in the database (SQLite file, PostgreSQL dump)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.policies.secret_grants import ServiceFile, parse_grants
from orchestrator.records import RunRecord, RunStatus, RunTrigger
from orchestrator.store.database import Database
from orchestrator.store.facade import Store
from tests.acceptance.docker.test_security import _stored_bytes
from tests.support.engines import JOB_IMAGE, job_spec

pytestmark = pytest.mark.docker
TOKENS = "ORCHESTRATOR_API_TOKENS_FILE"
TOKEN_LINE = "ops:tok-" + "9" * 32


def run_once(launcher: Any, spec: Any) -> RunRecord:
    run = launcher.queue(spec, RunTrigger.MANUAL)
    result: RunRecord = launcher.execute(run, spec)
    return result


def containers_of(docker_client: Any, test_label: dict[str, str]) -> list[Any]:
    ((key, value),) = test_label.items()
    return list(docker_client.containers.list(all=True, filters={"label": f"{key}={value}"}))


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    folder = tmp_path / "secrets"
    (folder / "sub").mkdir(parents=True)
    (folder / "tokens").write_text(TOKEN_LINE + "\n")
    (folder / "greeting").write_text("hello-from-a-secret\n")
    return folder


def reader(name: str) -> Any:
    return job_spec(
        name="sneaky", secrets=[{"name": name, "env": "GOT"}], command=["sh", "-c", "echo $GOT"]
    )


@pytest.mark.parametrize(
    ("named", "setting_path"),
    [
        ("tokens", "{secrets}/tokens"),  # by its own name
        ("tokens", "{secrets}/sub/../tokens"),  # the setting spelled another way
        ("innocent", "{secrets}/tokens"),  # a link in the secrets directory
        ("copy", "{secrets}/tokens"),  # a hard link
    ],
)
def test_a_job_naming_the_tokens_file_is_refused_at_launch_with_no_container(
    make_launcher: Any,
    docker_client: Any,
    test_label: dict[str, str],
    secrets: Path,
    named: str,
    setting_path: str,
) -> None:
    (secrets / "innocent").symlink_to(secrets / "tokens")
    os.link(secrets / "tokens", secrets / "copy")
    service = (ServiceFile(TOKENS, setting_path.format(secrets=secrets)),)
    launcher = make_launcher(secrets_dir=str(secrets), service_files=service)
    refused = run_once(launcher, reader(named))
    assert refused.status is RunStatus.FAILED and refused.container_id is None
    assert refused.error == (
        f"job 'sneaky': secrets[0]: {secrets}/{named} is the file the service's {TOKENS} "
        "reads, which no job may name (no setting permits it)"
    )
    assert containers_of(docker_client, test_label) == []
    # The same launcher gives an ordinary secret: the rule refuses the file, not secrets.
    given = run_once(launcher, reader("greeting"))
    assert given.status is RunStatus.SUCCEEDED, given.error
    assert given.output == "***\n"


def test_an_env_file_that_is_the_database_url_file_is_refused_at_launch(
    make_launcher: Any, secrets: Path
) -> None:
    (secrets / "db_url").write_text("DATABASE=postgresql://u:hunter2@db/x\n")
    service = (ServiceFile("ORCHESTRATOR_DATABASE_URL_FILE", str(secrets / "db_url")),)
    launcher = make_launcher(secrets_dir=str(secrets), service_files=service)
    spec = job_spec(name="sneaky", env_file=str(secrets / "db_url"), command=["env"])
    refused = run_once(launcher, spec)
    assert refused.status is RunStatus.FAILED and refused.container_id is None
    assert refused.error is not None
    assert refused.error.startswith("job 'sneaky': env_file: ")
    assert "ORCHESTRATOR_DATABASE_URL_FILE reads" in refused.error
    assert "hunter2" not in refused.error


def test_secret_grants_refuse_a_job_outside_its_glob_at_launch(
    make_launcher: Any, secrets: Path
) -> None:
    launcher = make_launcher(
        secrets_dir=str(secrets), secret_grants=parse_grants("greeting:backup-*")
    )
    outside = job_spec(
        name="report",
        secrets=[{"name": "greeting", "env": "GOT"}],
        command=["sh", "-c", "echo $GOT"],
    )
    refused = run_once(launcher, outside)
    assert refused.status is RunStatus.FAILED and refused.container_id is None
    assert refused.error == (
        "job 'report': secrets[0]: secret 'greeting' is not granted to this job "
        "(ORCHESTRATOR_SECRET_GRANTS grants it to backup-*; add greeting:report to permit it)"
    )
    inside = run_once(launcher, job_spec(**{**outside.to_dict(), "name": "backup-db"}))
    assert inside.status is RunStatus.SUCCEEDED and inside.output == "***\n"


def test_a_secret_looking_variable_is_masked_as_it_streams_and_as_stored(
    database_url: str, test_label: dict[str, str], tmp_path: Path, write_jobs: Any, docker_cli: Any
) -> None:
    value = "tok-" + os.urandom(12).hex()
    jobs = write_jobs(
        "talker.yaml",
        f"""
name: talker
schedule: "@daily"
image: {JOB_IMAGE}
environment: {{API_TOKEN: {value}, COLOUR: blue}}
command: [sh, -c, 'echo "token=$API_TOKEN"; sleep 3; echo "again $API_TOKEN $COLOUR"']
""",
    )
    docker_cli("jobs", "apply", str(jobs))
    ((key, label),) = test_label.items()
    env = {
        **os.environ,
        "ORCHESTRATOR_DATABASE_URL": database_url,
        "ORCHESTRATOR_CONTAINER_LABELS": f"{key}={label}",
    }
    command = [sys.executable, "-m", "orchestrator"]
    running = subprocess.Popen(
        [*command, "jobs", "run", "talker"], env=env, stdout=subprocess.PIPE, cwd=tmp_path
    )
    try:
        database = Database(database_url)
        try:
            deadline = time.monotonic() + 30
            while not _is_running(Store(database)):
                assert time.monotonic() < deadline, "the run did not start"
                time.sleep(0.1)
        finally:
            database.dispose()
        followed = subprocess.run(
            [*command, "runs", "logs", "1", "--follow"],
            env=env,
            capture_output=True,
            timeout=60,
            cwd=tmp_path,
        )
        printed, _ = running.communicate(timeout=60)
    finally:
        if running.poll() is None:
            running.kill()
    assert printed == b"token=***\nagain *** blue\n"  # `jobs run`: its output, live
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.endswith(b"again *** blue\n") and value.encode() not in followed.stdout
    assert docker_cli("runs", "logs", "1").stdout == "token=***\nagain *** blue\n"
    stored = _stored_bytes(database_url)
    assert b"token=***" in stored  # the dump is real: the masked output is in it
    assert f"token={value}".encode() not in stored and f"again {value}".encode() not in stored


def _is_running(store: Store) -> bool:
    runs = store.runs(limit=1)
    return bool(runs) and runs[0].status is RunStatus.RUNNING


def test_a_bind_holding_the_services_files_is_refused_at_launch_with_no_container(
    make_launcher: Any,
    docker_client: Any,
    test_label: dict[str, str],
    secrets: Path,
    tmp_path: Path,
) -> None:
    # The attack: jobs stored before this rule (or written to the database directly)
    # that mount the folder of the database, or the secrets directory itself.
    data = tmp_path / "data"
    (data / "reports").mkdir(parents=True)
    (data / "orchestrator.db").write_bytes(b"SQLite format 3\0")
    (data / "reports" / "r.txt").write_text("report\n")
    service = (ServiceFile("ORCHESTRATOR_DATABASE_URL", str(data / "orchestrator.db")),)
    launcher = make_launcher(secrets_dir=str(secrets), service_files=service)
    for source, said in (
        (data, f"holds {data}/orchestrator.db, the file the service's ORCHESTRATOR_DATABASE_URL"),
        (secrets, f"holds or lies in the secrets directory {secrets}"),
    ):
        spec = job_spec(name="sneaky", volumes=[f"{source}:/x"], command=["ls", "/x"])
        refused = run_once(launcher, spec)
        assert refused.status is RunStatus.FAILED and refused.container_id is None
        assert refused.error is not None
        assert refused.error.startswith(f"job 'sneaky': volumes[0]: {source} {said}")
        assert containers_of(docker_client, test_label) == []
    beside = job_spec(name="fine", volumes=[f"{data}/reports:/x"], command=["cat", "/x/r.txt"])
    given = run_once(launcher, beside)
    assert given.status is RunStatus.SUCCEEDED, given.error
    assert given.output == "report\n"

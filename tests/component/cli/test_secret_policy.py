"""The secrets policy at `jobs validate` and `jobs apply`: a job that names one of the
service's own files, or a secret not granted to it, is refused in one line (exit 2) and
nothing is written; a malformed grant stops every command at start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import cli


def invoke(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def setup(tmp_path: Path) -> tuple[dict[str, str], Path]:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    database = tmp_path / "jobs.db"
    # The database URL comes from a file in the secrets directory, as compose gives it.
    (secrets / "db_url").write_text(f"sqlite:///{database}\n")
    (secrets / "registry.json").write_text('{"auths": {}}')
    (secrets / "db_password").write_text("pw\n")
    env = {
        "ORCHESTRATOR_DATABASE_URL_FILE": str(secrets / "db_url"),
        "ORCHESTRATOR_SECRETS_DIR": str(secrets),
        "ORCHESTRATOR_REGISTRY_AUTH": "registry.json",
    }
    code, _, err = invoke(env, "db", "upgrade")
    assert code == 0, err
    return env, tmp_path


def job_file(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f'name: {name}\nschedule: "@daily"\nimage: busybox\n{body}')
    return str(path)


@pytest.mark.parametrize(
    ("body", "field", "setting"),
    [
        ("secrets: [{name: registry.json, env: R}]\n", "secrets[0]", "REGISTRY_AUTH"),
        ("secrets: [{name: db_url, file: /u}]\n", "secrets[0]", "DATABASE_URL_FILE"),
        ('ping: "http://127.0.0.1:9/{{secret:db_url}}"\n', "ping", "DATABASE_URL_FILE"),
    ],
)
def test_a_job_naming_a_file_of_the_service_is_refused_and_nothing_applied(
    setup: tuple[dict[str, str], Path], body: str, field: str, setting: str
) -> None:
    env, tmp_path = setup
    path = job_file(tmp_path, "sneaky", body)
    for command in ("validate", "apply"):
        code, out, err = invoke(env, "jobs", command, path)
        assert code == 2, (command, out, err)
        (line,) = err.strip().splitlines()
        assert line.startswith(f"job 'sneaky': {field}: ")
        assert f"the file the service's ORCHESTRATOR_{setting} reads" in line
    code, out, _ = invoke(env, "jobs", "list", "--json")
    assert code == 0 and out.strip() == "[]"
    # The attempt is in the audit trail, with who tried.
    code, out, _ = invoke(env, "audit", "list", "--json")
    (entry,) = json.loads(out)
    assert entry["action"] == "jobs.apply" and entry["actor"].startswith("cli:")
    assert entry["result"].startswith(f"error: job 'sneaky': {field}: ")


def test_a_link_to_the_database_url_file_is_the_same_file(
    setup: tuple[dict[str, str], Path],
) -> None:
    env, tmp_path = setup
    secrets = Path(env["ORCHESTRATOR_SECRETS_DIR"])
    (secrets / "harmless").symlink_to(secrets / "db_url")
    code, _, err = invoke(
        env, "jobs", "apply", job_file(tmp_path, "linked", "secrets: [{name: harmless, env: X}]\n")
    )
    assert code == 2 and "ORCHESTRATOR_DATABASE_URL_FILE reads" in err


def test_secret_grants_refuse_a_job_outside_the_glob(setup: tuple[dict[str, str], Path]) -> None:
    env, tmp_path = setup
    env = {**env, "ORCHESTRATOR_SECRET_GRANTS": "db_password:backup-*"}
    body = "secrets: [{name: db_password, env: DB_PASSWORD}]\n"
    code, _, err = invoke(env, "jobs", "apply", job_file(tmp_path, "report", body))
    assert code == 2
    assert err.strip() == (
        "job 'report': secrets[0]: secret 'db_password' is not granted to this job "
        "(ORCHESTRATOR_SECRET_GRANTS grants it to backup-*; add db_password:report to permit it)"
    )
    code, out, err = invoke(env, "jobs", "apply", job_file(tmp_path, "backup-db", body))
    assert code == 0, err
    assert "created backup-db" in out


def test_a_malformed_grant_stops_every_command_at_start(
    setup: tuple[dict[str, str], Path],
) -> None:
    env, _ = setup
    env = {**env, "ORCHESTRATOR_SECRET_GRANTS": "db_password:backup-*,slack_url"}
    code, out, err = invoke(env, "jobs", "list")
    assert code == 2 and out == ""
    assert err.strip() == (
        "ORCHESTRATOR_SECRET_GRANTS: entry 'slack_url' is not SECRET:JOBGLOB "
        "(like db_password:backup-*)"
    )


def test_serve_refuses_a_jobs_folder_naming_a_service_file_before_it_starts(
    setup: tuple[dict[str, str], Path],
) -> None:
    import os
    import subprocess
    import sys

    env, tmp_path = setup
    folder = tmp_path / "jobs"
    folder.mkdir()
    job_file(folder, "sneaky", "secrets: [{name: db_url, env: URL}]\n")
    # The real executable: were the job let through, the service would start and run on
    # (the timeout fails the test).
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "serve", "--jobs", str(folder)],
        env={**os.environ, **env, "ORCHESTRATOR_HEALTH_FILE": str(tmp_path / "health.json")},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"job 'sneaky': secrets[0]: {tmp_path}/secrets/db_url is the file")
    code, out, _ = invoke(env, "jobs", "list", "--json")
    assert code == 0 and out.strip() == "[]"


@pytest.mark.parametrize(
    ("source", "said"),
    [
        # The folder of the SQLite database: the job could write any run, job or token.
        (
            "{tmp}/data",
            "holds {tmp}/data/jobs.db, the file the service's ORCHESTRATOR_DATABASE_URL",
        ),
        # The database file itself, through a link.
        (
            "{tmp}/db-link",
            "holds {tmp}/data/jobs.db, the file the service's ORCHESTRATOR_DATABASE_URL",
        ),
        # The secrets directory, or a folder in it: every secret, past the grants.
        ("{tmp}/secrets", "holds or lies in the secrets directory {tmp}/secrets"),
        ("{tmp}/secrets/sub", "holds or lies in the secrets directory {tmp}/secrets"),
    ],
)
def test_a_bind_of_what_only_the_service_reads_is_refused_and_nothing_applied(
    setup: tuple[dict[str, str], Path], source: str, said: str
) -> None:
    # The attack: not naming the service's files (refused above) but mounting the
    # folder that holds them, which no secrets rule looked at.
    env, tmp_path = setup
    (tmp_path / "secrets" / "sub").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "db-link").symlink_to(tmp_path / "data" / "jobs.db")
    env = {**env, "ORCHESTRATOR_DATABASE_URL": f"sqlite:///{tmp_path}/data/jobs.db"}
    del env["ORCHESTRATOR_DATABASE_URL_FILE"]
    code, _, err = invoke(env, "db", "upgrade")
    assert code == 0, err
    bind = source.format(tmp=tmp_path)
    path = job_file(tmp_path, "sneaky", f'volumes: ["{bind}:/x"]\n')
    for command in ("validate", "apply"):
        code, out, err = invoke(env, "jobs", command, path)
        assert code == 2, (command, out, err)
        assert f"job 'sneaky': volumes[0]: {bind} {said.format(tmp=tmp_path)}" in err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, out, _ = invoke(env, "jobs", "list", "--json")
    assert code == 0 and json.loads(out) == []
    # A folder beside them is a job's to mount.
    (tmp_path / "data" / "reports").mkdir()
    fine = job_file(tmp_path, "fine", f'volumes: ["{tmp_path}/data/reports:/x"]\n')
    code, _, err = invoke(env, "jobs", "apply", fine)
    assert code == 0, err

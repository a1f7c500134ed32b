"""Settings that hold a secret can come from a file (`_FILE` twins, as compose and Swarm
secrets give them), and `--help` never shows a secret's value."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli.main import cli


def invoke(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_the_database_url_can_come_from_a_file(tmp_path: Path) -> None:
    database = tmp_path / "from-file.db"
    url_file = tmp_path / "url"
    url_file.write_text(f"sqlite:///{database}\n")
    code, _, err = invoke({"ORCHESTRATOR_DATABASE_URL_FILE": str(url_file)}, "db", "upgrade")
    assert code == 0, err
    assert database.exists()


def test_the_url_and_its_file_twin_together_are_refused(tmp_path: Path) -> None:
    url_file = tmp_path / "url"
    url_file.write_text("sqlite:////nowhere.db")
    env = {
        "ORCHESTRATOR_DATABASE_URL": f"sqlite:///{tmp_path}/a.db",
        "ORCHESTRATOR_DATABASE_URL_FILE": str(url_file),
    }
    code, _, err = invoke(env, "db", "current")
    assert code == 2
    assert err.strip() == (
        "set ORCHESTRATOR_DATABASE_URL or ORCHESTRATOR_DATABASE_URL_FILE, not both"
    )


def test_an_unreadable_file_twin_is_one_line(tmp_path: Path) -> None:
    env = {"ORCHESTRATOR_DATABASE_URL_FILE": str(tmp_path / "absent")}
    code, _, err = invoke(env, "db", "current")
    assert code == 2
    assert err.strip().splitlines() == [
        f"ORCHESTRATOR_DATABASE_URL_FILE: cannot read {tmp_path}/absent: No such file or directory"
    ]


def test_allow_privileged_is_a_setting_of_serve_and_jobs_run_only() -> None:
    _, top, _ = invoke({}, "--help")
    assert "--allow-privileged-jobs" not in top
    _, serve, _ = invoke({}, "serve", "--help")
    assert "--allow-privileged-jobs" in serve and "ORCHESTRATOR_ALLOW_PRIVILEGED_JOBS" in serve
    _, run, _ = invoke({}, "jobs", "run", "--help")
    assert "--allow-privileged-jobs" in run and "YOUR rights" in run

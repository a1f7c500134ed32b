"""The error boundary through the real `orchestrator` executable, and the help texts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from orchestrator.cli.main import SUBCOMMANDS, cli
from orchestrator.cli.top_help import HELP_TEXT
from orchestrator.store.migrations import HEAD
from scripts.write_top_help import click_help
from tests.conftest import Cli


def orchestrator(
    *args: str, database_url: str, cwd: Path, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ORCHESTRATOR_DATABASE_URL": database_url, **extra_env}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_invalid_job_file_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "backup.yaml"
    bad.write_text("name: backup\nschedule: '61 * * * *'\nimage: busybox\n")
    result = orchestrator("jobs", "validate", str(bad), database_url="sqlite:///x.db", cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result).startswith(
        f"{bad}: job 'backup': schedule: '61 * * * *' is not a valid cron expression"
    )


def test_unreachable_postgres_exits_1_with_one_line(tmp_path: Path) -> None:
    url = "postgresql://nobody:secret@127.0.0.1:1/none"
    result = orchestrator("jobs", "list", database_url=url, cwd=tmp_path)
    assert result.returncode == 1
    line = one_line(result)
    assert line.startswith("cannot reach database postgresql+psycopg://nobody:***@127.0.0.1:1/none")
    assert "secret" not in line


def test_unopenable_sqlite_exits_1_with_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/missing-folder/db.sqlite"
    result = orchestrator("db", "upgrade", database_url=url, cwd=tmp_path)
    assert result.returncode == 1
    assert "unable to open database file" in one_line(result)


def test_a_bad_database_url_exits_2(tmp_path: Path) -> None:
    result = orchestrator("jobs", "list", database_url="mysql://x@y/z", cwd=tmp_path)
    assert result.returncode == 2
    assert "only sqlite:/// and postgresql:// are supported" in one_line(result)
    result = orchestrator("jobs", "list", database_url="not a url", cwd=tmp_path)
    assert result.returncode == 2
    assert "is not a database URL" in one_line(result)


def test_commands_refuse_a_database_not_at_head(empty_database_url: str) -> None:
    cli_ = Cli(empty_database_url)
    result = cli_("jobs", "list", expect=1)
    if empty_database_url.startswith("sqlite"):  # no file yet, and none is made by asking
        assert result.stderr.strip().endswith("does not exist yet: run 'orchestrator db upgrade'")
        cli_("db", "current", expect=1)
    else:
        assert result.stderr.strip().endswith("has no schema yet: run 'orchestrator db upgrade'")
        assert cli_("db", "current").stdout.startswith("none")
    assert f"-> {HEAD} (head)" in cli_("db", "upgrade").stdout
    assert cli_("db", "current").stdout.strip() == f"{HEAD} (head)"
    assert f"already at revision {HEAD}" in cli_("db", "upgrade").stdout
    assert cli_("jobs", "list").stdout.startswith("no jobs")


def _commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        path = (*prefix, name)
        if isinstance(command, click.Group):
            found.extend(_commands(command, path))
        else:
            found.append((path, command))
    return found


@pytest.mark.parametrize(
    ("path", "command"), _commands(cli), ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_every_command_has_help_with_an_example(
    path: tuple[str, ...], command: click.Command
) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    assert command.help and "Example: orchestrator" in command.help, path


def test_the_listing_of_commands_says_what_each_command_says_of_itself() -> None:
    # The top-level help lists the commands from SUBCOMMANDS without importing them.
    context = click.Context(cli)
    for name, (_, short) in SUBCOMMANDS.items():
        command = cli.get_command(context, name)
        assert command is not None, name
        assert command.get_short_help_str(limit=84) == short, name
    listed = CliRunner().invoke(cli, ["--help"]).output
    assert all(f"  {name} " in listed for name in SUBCOMMANDS)


@pytest.mark.parametrize(
    ("columns", "light"),
    [("80", ("click",)), ("60", ())],  # 80: the entry's own text; 60: click renders it
)
def test_help_loads_neither_the_engine_nor_the_database_nor_any_subcommand(
    columns: str, light: tuple[str, ...]
) -> None:
    heavy = ("docker", "sqlalchemy", "apscheduler", "alembic", "yaml", "orchestrator.store")
    heavy += tuple({module for module, _ in SUBCOMMANDS.values()}) + light
    code = (
        "import sys\n"
        "from orchestrator.cli.entry import main\n"
        "sys.argv = ['orchestrator', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = {heavy!r}\n"
        "print(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.')\n"
        "                                          for h in heavy)))\n"
    )
    loaded = (
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "COLUMNS": columns},
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    assert loaded == "[]"


def help_of(*args: str, columns: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env={**os.environ, "COLUMNS": str(columns)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_help_printed_without_click_is_clicks_own() -> None:
    # From 80 columns on the executable prints top_help.HELP_TEXT; it must be what click
    # renders now (regenerate it with scripts/write_top_help.py when an option changes).
    assert click_help(80) == HELP_TEXT, "run: .venv/bin/python scripts/write_top_help.py"
    for columns in (80, 200):
        for option in ("--help", "-h"):
            result = help_of(option, columns=columns)
            assert (result.returncode, result.stdout, result.stderr) == (0, HELP_TEXT, "")
    narrow = help_of("--help", columns=60)  # click wraps narrower than the stored text
    assert (narrow.returncode, narrow.stdout) == (0, click_help(60))
    assert narrow.stdout != HELP_TEXT
    # Anything more than the bare option is click's: a subcommand's help, a bad option.
    assert "Usage: orchestrator jobs" in help_of("jobs", "--help", columns=80).stdout
    bad = help_of("--help", "--nope", columns=80)
    assert bad.returncode == 2 and "--nope" in bad.stderr


def test_help_names_the_environment_variables() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert "ORCHESTRATOR_DATABASE_URL" in result.stdout


def test_an_unreachable_engine_exits_1_with_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/db.sqlite"
    job = tmp_path / "job.yaml"
    job.write_text("name: j\nschedule: '@daily'\nimage: busybox\n")
    assert orchestrator("db", "upgrade", database_url=url, cwd=tmp_path).returncode == 0
    assert orchestrator("jobs", "apply", str(job), database_url=url, cwd=tmp_path).returncode == 0
    result = orchestrator(
        "jobs", "run", "j", database_url=url, cwd=tmp_path, DOCKER_HOST="unix:///nonexistent.sock"
    )
    assert result.returncode == 1
    assert one_line(result).startswith("cannot reach the Docker engine at unix:///nonexistent.sock")

"""Values no one checked, through the real executable: numbers of thousands of digits,
digits that are not ASCII, times out of range. Each is one line and exit 2, never a
traceback; `serve --jobs` refuses such a file before it serves anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.component.cli.test_errors_and_help import one_line, orchestrator

BIG = "9" * 5000  # past the 4300 digits int() takes
JOB = "name: hostile\nschedule: '{schedule}'\nimage: busybox\ncommand: [echo]\n"


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    assert orchestrator("db", "upgrade", database_url=url, cwd=tmp_path).returncode == 0
    return url


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["runs", "list", "--since", f"{BIG}d"], "is longer than 100 years"),
        (["runs", "list", "--since", "0001-01-01T00:00:00+14:00"], "out of the range of times"),
        (["runs", "list", "--since", "9999-12-31T23:59:59-14:00"], "out of the range of times"),
        (["runs", "list", "--since", "٣d"], "is not a duration"),
        (["serve", "--http", "127.0.0.1:²"], "is not HOST:PORT"),
        (["serve", "--http", f"127.0.0.1:{BIG}"], "is not HOST:PORT"),
        (["--port-range", "1-²", "jobs", "list"], "is not FIRST-LAST"),
        (["--port-range", f"1-{BIG}", "jobs", "list"], "is not FIRST-LAST"),
        (["--output-limit", f"{BIG}m", "jobs", "list"], "more digits than a size needs"),
    ],
)
def test_hostile_options_are_one_line_and_exit_2(
    db: str, tmp_path: Path, args: list[str], expected: str
) -> None:
    result = orchestrator(*args, database_url=db, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert expected in one_line(result)


@pytest.mark.parametrize(
    ("schedule", "extra", "expected"),
    [
        ("0 0 1 1 *", f"timeout: {BIG}\n", "line 5, column 10: invalid YAML: a number of more"),
        ("0 0 1 1 *", f"timeout: 0x{'f' * 4000}\n", "a number of more than 1000 digits"),
        ("0 0 1 1 *", f"timeout: {BIG}s\n", "timeout: '999"),
        ("0 0 1 1 *", f"retries: {{count: 3, backoff: {BIG}m}}\n", "is longer than 100 years"),
        ("0 0 1 1 *", f"resources: {{memory: '1.{BIG}g'}}\n", "more digits than a size needs"),
        ("0 0 1 1 *", f"ports: ['{BIG}:80']\n", "is not a port"),
        ("0 0 1 1 *", f"command: [echo, {BIG}]\n", "a number of more than 1000 digits"),
        (f"*/{BIG} * * * *", "", "is too large"),
        ("² * * * *", "", "is not a number, range, list or step"),
    ],
)
def test_hostile_numbers_in_job_files_are_one_line_and_exit_2(
    db: str, tmp_path: Path, schedule: str, extra: str, expected: str
) -> None:
    check_job_file(db, tmp_path, ["jobs", "validate"], schedule, extra, expected)


@pytest.mark.parametrize("command", [["jobs", "apply"], ["serve", "--jobs"]])
def test_apply_and_serve_jobs_refuse_a_hostile_number_in_one_line(
    db: str, tmp_path: Path, command: list[str]
) -> None:
    check_job_file(db, tmp_path, command, "0 0 1 1 *", f"timeout: {BIG}\n", "a number of more")


def check_job_file(
    db: str, tmp_path: Path, command: list[str], schedule: str, extra: str, expected: str
) -> None:
    folder = tmp_path / "jobs"
    folder.mkdir()
    text = JOB.format(schedule=schedule) + extra
    if extra.startswith("command:"):
        text = text.replace("command: [echo]\n", "")
    (folder / "hostile.yaml").write_text(text)
    target = folder if command[0] == "serve" else folder / "hostile.yaml"
    result = orchestrator(*command, str(target), database_url=db, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert expected in one_line(result)

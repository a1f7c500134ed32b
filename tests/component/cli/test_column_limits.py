"""Values a column cannot hold, through the real executable on SQLite and PostgreSQL
alike: refused at apply with one line naming the job and the field (a URL the outbox
could never queue: a run's end that queues it would be refused), or made to fit (where
a job came from)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.component.cli.test_errors_and_help import one_line, orchestrator

HOST = "https://hc.example/"


@pytest.mark.parametrize(
    ("field", "yaml", "expected"),
    [
        # A ping is sent to <ping>/start: 2,042 characters and its suffix fill the column.
        ("ping", f"ping: {HOST}{'p' * (2043 - len(HOST))}", "ping: is 2043 characters long"),
        (
            "notify",
            f"notify: [{{webhook: {HOST}{'w' * (2049 - len(HOST))}}}]",
            "notify[0].webhook: is 2049 characters long, at most 2048",
        ),
        (
            "notify",
            f"notify: [{{apprise: 'ntfy://{'a' * 2050}'}}]",
            "notify[0].apprise: is 2057 characters long, at most 2048",
        ),
    ],
)
def test_a_url_the_outbox_cannot_hold_is_refused_at_apply(
    database_url: str, tmp_path: Path, field: str, yaml: str, expected: str
) -> None:
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(f"name: loud\nschedule: '@daily'\nimage: busybox\n{yaml}\n")
    result = orchestrator("jobs", "apply", str(jobs), database_url=database_url, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert one_line(result).startswith(f"{jobs}: job 'loud': {expected}")
    listed = orchestrator("jobs", "list", "--json", database_url=database_url, cwd=tmp_path)
    assert json.loads(listed.stdout) == []  # nothing written


def test_the_longest_ping_that_fits_is_applied(database_url: str, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.yaml"
    ping = HOST + "p" * (2042 - len(HOST))
    jobs.write_text(f"name: loud\nschedule: '@daily'\nimage: busybox\nping: {ping}\n")
    result = orchestrator("jobs", "apply", str(jobs), database_url=database_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_a_job_file_deeper_than_its_column_is_applied_its_source_cut(
    database_url: str, tmp_path: Path
) -> None:
    # A path of 1,300 characters (PostgreSQL refused it: VARCHAR(1024); SQLite kept it).
    folder = tmp_path
    for index in range(6):
        folder = folder / f"{index}{'d' * 199}"
    folder.mkdir(parents=True)
    jobs = folder / "deep-jobs.yaml"
    jobs.write_text("name: deep\nschedule: '@daily'\nimage: busybox\n")
    result = orchestrator("jobs", "apply", str(jobs), database_url=database_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = orchestrator("jobs", "list", "--json", database_url=database_url, cwd=tmp_path)
    (job,) = json.loads(listed.stdout)
    assert len(str(jobs)) > 1024 and len(job["source"]) == 1024
    assert job["source"] == "..." + str(jobs)[-1021:]

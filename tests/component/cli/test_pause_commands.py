"""`orchestrator pause` / `resume` and the schedule words through the real executable:
recorded with who and when, kept across `jobs apply`, shown by `jobs list`; bad words
are one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.component.cli.test_errors_and_help import one_line, orchestrator

JOBS = """\
name: backup-db
schedule: "@hourly"
image: busybox
---
name: backup-files
schedule: "@daily"
jitter: 5m
image: busybox
---
name: report
schedule: "@triggered"
run_on_start: true
image: busybox
---
name: migrate
at: "2027-01-31T03:00:00+01:00"
image: busybox
"""


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    assert orchestrator("db", "upgrade", database_url=url, cwd=tmp_path).returncode == 0
    (tmp_path / "jobs.yaml").write_text(JOBS)
    applied = orchestrator("jobs", "apply", "jobs.yaml", database_url=url, cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    return url


def _listing(db: str, tmp_path: Path) -> dict[str, dict[str, object]]:
    result = orchestrator("jobs", "list", "--json", database_url=db, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return {job["name"]: job for job in json.loads(result.stdout)}


def test_pause_by_glob_is_recorded_kept_by_apply_and_undone_by_resume(
    db: str, tmp_path: Path
) -> None:
    paused = orchestrator("pause", "backup-*", database_url=db, cwd=tmp_path)
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.splitlines() == ["backup-db paused", "backup-files paused"]
    jobs = _listing(db, tmp_path)
    assert [jobs[name]["state"] for name in sorted(jobs)] == [
        "paused",
        "paused",
        "scheduled",
        "manual",
    ]
    assert jobs["backup-db"]["next_run_at"] is None
    assert str(jobs["backup-db"]["paused_by"]).startswith("cli:")
    # The files applied again (one of them changed): the pause stays.
    (tmp_path / "jobs.yaml").write_text(JOBS.replace('"@hourly"', '"@every 2h"'))
    again = orchestrator("jobs", "apply", "jobs.yaml", database_url=db, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert _listing(db, tmp_path)["backup-db"]["state"] == "paused"
    table = orchestrator("jobs", "list", database_url=db, cwd=tmp_path).stdout
    assert "paused by cli:" in next(line for line in table.splitlines() if "backup-db" in line)
    resumed = orchestrator("resume", database_url=db, cwd=tmp_path)
    assert resumed.stdout.splitlines() == ["backup-db resumed", "backup-files resumed"]
    assert _listing(db, tmp_path)["backup-db"]["next_run_at"] is not None
    audit = orchestrator("audit", "list", "--json", database_url=db, cwd=tmp_path)
    actions = [(entry["action"], entry["target"]) for entry in json.loads(audit.stdout)]
    assert ("jobs.pause", "backup-*") in actions
    assert ("jobs.resume", "*") in actions


def test_a_glob_matching_no_job_is_one_line_and_changes_nothing(db: str, tmp_path: Path) -> None:
    result = orchestrator("pause", "nothing-*", database_url=db, cwd=tmp_path)
    assert result.returncode == 1
    assert one_line(result) == "no job matches 'nothing-*'"
    assert all(job["paused_at"] is None for job in _listing(db, tmp_path).values())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("at: 2027-01-31T03:00:00\n", "job 'x': at: '2027-01-31T03:00:00' has no offset"),
        ('at: "2027-01-31T03:00:00Z"\nschedule: "@daily"\n', "at: cannot be combined"),
        ('schedule: "@every 1m"\njitter: 1m\n', "jitter: 1m is not shorter than"),
        ('schedule: "@daily"\nrun_on_start: "yes"\n', "run_on_start: must be true or false"),
    ],
)
def test_bad_schedule_words_exit_2_with_one_line(tmp_path: Path, text: str, message: str) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text(f"name: x\nimage: busybox\n{text}")
    result = orchestrator("jobs", "validate", str(bad), database_url="sqlite:///x.db", cwd=tmp_path)
    assert result.returncode == 2
    assert message in one_line(result)

"""`orchestrator runs ...` over a history recorded through the store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.records import NewRun, RunStatus, RunTrigger
from orchestrator.store.database import Database
from orchestrator.store.runs import RunRepository
from tests.conftest import Cli

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def history(database: Database) -> list[int]:
    runs = [
        NewRun(
            "report",
            NOW - timedelta(days=40),
            RunTrigger.SCHEDULE,
            status=RunStatus.SUCCEEDED,
            started_at=NOW - timedelta(days=40),
            finished_at=NOW - timedelta(days=40) + timedelta(seconds=3),
            exit_code=0,
            container_id="c" * 64,
            image="busybox",
            output="old\n",
        ),
        NewRun(
            "report",
            NOW - timedelta(days=1),
            RunTrigger.SCHEDULE,
            status=RunStatus.FAILED,
            exit_code=2,
            error="exit status 2",
            output="x" * 10 + "\n",
            output_truncated=True,
        ),
        NewRun(
            "report",
            NOW - timedelta(days=1),
            RunTrigger.RETRY,
            attempt=2,
            status=RunStatus.SUCCEEDED,
            exit_code=0,
        ),
        NewRun("backup", NOW - timedelta(hours=1), RunTrigger.MANUAL, status=RunStatus.RUNNING),
        NewRun("backup", NOW - timedelta(days=50), RunTrigger.CATCHUP, status=RunStatus.SKIPPED),
    ]
    with database.session() as session:
        return [RunRepository(session).add(run).id for run in runs]


def test_list_json_newest_first_with_the_promised_keys(run_cli: Cli, history: list[int]) -> None:
    runs = json.loads(run_cli("runs", "list", "--json").stdout)
    assert [run["id"] for run in runs] == [
        history[3],
        history[2],
        history[1],
        history[0],
        history[4],
    ]
    keys = {
        "id",
        "job",
        "status",
        "trigger",
        "attempt",
        "scheduled_for",
        "started_at",
        "finished_at",
        "exit_code",
        "container_id",
        "ports",
        "error",
    }
    assert all(keys <= run.keys() for run in runs)
    oldest = runs[3]
    assert oldest["status"] == "succeeded" and oldest["exit_code"] == 0
    assert datetime.fromisoformat(oldest["scheduled_for"]) == NOW - timedelta(days=40)
    assert oldest["scheduled_for"].endswith("+00:00")
    assert oldest["ports"] == {}


def test_list_filters(run_cli: Cli, history: list[int]) -> None:
    def ids(*args: str) -> list[int]:
        return [run["id"] for run in json.loads(run_cli("runs", "list", "--json", *args).stdout)]

    assert ids("--job", "backup") == [history[3], history[4]]
    assert ids("--status", "failed") == [history[1]]
    assert ids("--since", "2d") == [history[3], history[2], history[1]]
    assert ids("--since", (NOW - timedelta(hours=2)).isoformat()) == [history[3]]
    assert ids("--job", "report", "--limit", "1") == [history[2]]
    assert ids("--job", "nobody") == []
    bad = run_cli("runs", "list", "--status", "exploded", expect=2)
    assert "'exploded' is not one of" in bad.stderr
    bad_since = run_cli("runs", "list", "--since", "last tuesday", expect=2)
    assert "neither a time" in bad_since.stderr


def test_show_includes_the_output(run_cli: Cli, history: list[int]) -> None:
    shown = json.loads(run_cli("runs", "show", str(history[1]), "--json").stdout)
    assert shown["output"] == "xxxxxxxxxx\n" and shown["output_truncated"] is True
    assert shown["error"] == "exit status 2" and shown["attempt"] == 1
    text = run_cli("runs", "show", str(history[0])).stdout
    assert "status:         succeeded" in text and text.endswith("--- output ---\nold\n")
    assert run_cli("runs", "show", "99999", expect=1).stderr.strip() == "no run with id 99999"


def test_table(run_cli: Cli, history: list[int]) -> None:
    lines = run_cli("runs", "list").stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "JOB", "STATUS"]
    assert len(lines) == 1 + len(history)
    assert "3.0s" in run_cli("runs", "list", "--job", "report").stdout


def test_prune(run_cli: Cli, history: list[int]) -> None:
    dry = run_cli("runs", "prune", "--older-than", "30d", "--dry-run")
    assert dry.stdout.startswith("would delete 1 run(s)")
    assert len(json.loads(run_cli("runs", "list", "--json").stdout)) == 5
    assert run_cli("runs", "prune", "--older-than", "30d").stdout.startswith("deleted 1 run(s)")
    left = [run["id"] for run in json.loads(run_cli("runs", "list", "--json").stdout)]
    # the 40-day-old report run went; the 50-day-old skipped backup run is backup's last
    # caught-up fire (its newer run is manual): catch-up after downtime reads it
    assert left == [history[3], history[2], history[1], history[4]]
    assert run_cli("runs", "prune", "--older-than", "30d").stdout.startswith("deleted 0 run(s)")
    assert "is not a duration" in run_cli("runs", "prune", "--older-than", "never", expect=2).stderr


def test_empty_history(run_cli: Cli) -> None:
    assert run_cli("runs", "list").stdout.strip() == "no runs match"
    assert json.loads(run_cli("runs", "list", "--json").stdout) == []

"""`orchestrator jobs ...` through click's runner, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import Cli

EXAMPLES = Path(__file__).resolve().parents[3] / "jobs"


def test_apply_the_examples_then_again(run_cli: Cli) -> None:
    first = run_cli("jobs", "apply", str(EXAMPLES))
    assert "4 created, 0 updated, 0 unchanged, 0 deleted" in first.stdout
    second = run_cli("jobs", "apply", str(EXAMPLES), "--json")
    assert json.loads(second.stdout) == {
        "created": [],
        "updated": [],
        "unchanged": ["cache-warmer", "heartbeat-server", "hello", "nightly-report"],
        "deleted": [],
        "dry_run": False,
    }


def test_apply_updates_and_prunes(run_cli: Cli, write_jobs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_jobs("a.yaml", "name: a\nschedule: '@daily'\nimage: busybox\n")
    write_jobs("b.yaml", "name: b\nschedule: '@daily'\nimage: busybox\n")
    run_cli("jobs", "apply", str(tmp_path / "jobs"))
    (tmp_path / "jobs" / "b.yaml").unlink()
    write_jobs("a.yaml", "name: a\nschedule: '@hourly'\nimage: busybox\n")
    dry = run_cli("jobs", "apply", str(tmp_path / "jobs"), "--prune", "--dry-run")
    assert "dry run, nothing written: 0 created, 1 updated, 0 unchanged, 1 deleted" in dry.stdout
    assert {j["name"] for j in json.loads(run_cli("jobs", "list", "--json").stdout)} == {"a", "b"}
    result = run_cli("jobs", "apply", str(tmp_path / "jobs"), "--prune")
    assert "updated a" in result.stdout and "deleted b" in result.stdout
    listed = json.loads(run_cli("jobs", "list", "--json").stdout)
    assert [(j["name"], j["schedule"]) for j in listed] == [("a", "@hourly")]


def test_an_invalid_file_in_the_batch_writes_nothing(
    run_cli: Cli, write_jobs, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    write_jobs("a-good.yaml", "name: good\nschedule: '@daily'\nimage: busybox\n")
    bad = write_jobs("backup.yaml", "name: backup\nschedule: '61 * * * *'\nimage: busybox\n")
    result = run_cli("jobs", "apply", str(tmp_path / "jobs"), expect=2)
    assert result.stderr.strip() == (
        f"{bad}: job 'backup': schedule: '61 * * * *' is not a valid cron expression "
        "(minute: 61 is out of range 0-59)"
    )
    assert "Traceback" not in result.output
    assert json.loads(run_cli("jobs", "list", "--json").stdout) == []


def test_validate_touches_no_database(tmp_path: Path, write_jobs) -> None:  # type: ignore[no-untyped-def]
    cli = Cli(f"sqlite:///{tmp_path}/never-created/x.db")  # unreachable: not needed
    result = cli("jobs", "validate", str(EXAMPLES))
    assert result.stdout.strip() == "4 job(s) in 4 file(s) are valid"
    as_json = json.loads(cli("jobs", "validate", str(EXAMPLES), "--json").stdout)
    assert {job["name"] for job in as_json} == {
        "cache-warmer",
        "heartbeat-server",
        "hello",
        "nightly-report",
    }
    bad = write_jobs("x.yaml", "name: x\nschedule: '@daily'\nimage: b\ntimeout: forever\n")
    failed = cli("jobs", "validate", str(bad), expect=2)
    assert (
        failed.stderr.strip()
        == f"{bad}: job 'x': timeout: 'forever' is not a duration (like 90s, 15m, 1h30m)"
    )


def test_list_json_has_the_promised_shape(run_cli: Cli) -> None:
    run_cli("jobs", "apply", str(EXAMPLES))
    before = datetime.now(UTC)
    jobs = json.loads(run_cli("jobs", "list", "--json").stdout)
    assert [job["name"] for job in jobs] == [
        "cache-warmer",
        "heartbeat-server",
        "hello",
        "nightly-report",
    ]
    for job in jobs:
        assert {
            "name",
            "enabled",
            "schedule",
            "timezone",
            "image",
            "next_run_at",
            "last_status",
        } <= job.keys()
        next_run = datetime.fromisoformat(job["next_run_at"])
        assert next_run.utcoffset() is not None and next_run > before
        assert job["last_status"] is None
    report = next(job for job in jobs if job["name"] == "nightly-report")
    assert report["timezone"] == "Europe/Berlin"
    assert datetime.fromisoformat(report["next_run_at"]).astimezone(UTC).hour in (
        1,
        2,
    )  # 03:00 Berlin


def test_list_as_a_table(run_cli: Cli) -> None:
    assert "no jobs" in run_cli("jobs", "list").stdout
    run_cli("jobs", "apply", str(EXAMPLES))
    lines = run_cli("jobs", "list").stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "ENABLED", "SCHEDULE"]
    assert lines[1].split()[0] == "cache-warmer"


def test_show_gives_the_definition_and_the_next_five_fires(run_cli: Cli) -> None:
    run_cli("jobs", "apply", str(EXAMPLES))
    shown = json.loads(run_cli("jobs", "show", "cache-warmer", "--json").stdout)
    assert shown["definition"]["volumes"] == [
        "/tmp/orchestrator-demo/config:/cfg:ro",
        "orchestrator-demo-cache:/cache",
    ]
    runs = [datetime.fromisoformat(t) for t in shown["next_runs"]]
    assert len(runs) == 5
    assert all((b - a).total_seconds() == 900 for a, b in itertools.pairwise(runs))
    assert all(t.second == 30 and t.minute % 15 == 0 for t in runs)
    assert shown["next_run_at"] == shown["next_runs"][0]
    text = run_cli("jobs", "show", "nightly-report").stdout
    assert "next runs (Europe/Berlin):" in text and "03:00:00+01:00" in text


def test_disable_enable_delete(run_cli: Cli) -> None:
    run_cli("jobs", "apply", str(EXAMPLES))
    assert run_cli("jobs", "disable", "nightly-report").stdout.strip() == "nightly-report disabled"
    assert "already disabled" in run_cli("jobs", "disable", "nightly-report").stdout
    shown = json.loads(run_cli("jobs", "show", "nightly-report", "--json").stdout)
    assert shown["enabled"] is False and shown["next_run_at"] is None
    assert len(shown["next_runs"]) == 5
    run_cli("jobs", "apply", str(EXAMPLES))  # the unchanged file does not re-enable it
    assert not json.loads(run_cli("jobs", "show", "nightly-report", "--json").stdout)["enabled"]
    run_cli("jobs", "enable", "nightly-report")
    assert json.loads(run_cli("jobs", "show", "nightly-report", "--json").stdout)["enabled"]
    run_cli("jobs", "delete", "nightly-report")
    missing = run_cli("jobs", "show", "nightly-report", expect=1)
    assert missing.stderr.strip() == "no job named 'nightly-report'"


def test_apply_accepts_single_files_and_reports_missing_paths(run_cli: Cli, tmp_path: Path) -> None:
    copy = tmp_path / "one.yaml"
    shutil.copy(EXAMPLES / "nightly-report.yaml", copy)
    assert "1 created" in run_cli("jobs", "apply", str(copy)).stdout
    result = run_cli("jobs", "apply", str(tmp_path / "nope.yaml"), expect=2)
    assert result.stderr.strip() == f"{tmp_path / 'nope.yaml'}: no such file or folder"


def test_chains_refused_at_apply_and_delete(run_cli: Cli, write_jobs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_jobs("a.yaml", "name: a\nschedule: '@daily'\nimage: busybox\non_success: [b]\n")
    write_jobs("b.yaml", "name: b\nschedule: '@daily'\nimage: busybox\non_failure: [a]\n")
    cycle = run_cli("jobs", "apply", str(tmp_path / "jobs"), expect=2)
    assert cycle.stderr.strip() == "jobs chain in a cycle: a -> b -> a"
    assert json.loads(run_cli("jobs", "list", "--json").stdout) == []
    write_jobs("b.yaml", "name: b\nschedule: '@daily'\nimage: busybox\non_failure: [nobody]\n")
    nowhere = run_cli("jobs", "apply", str(tmp_path / "jobs"), expect=2)
    assert nowhere.stderr.strip() == "job 'b': chains to job 'nobody', which does not exist"
    write_jobs("b.yaml", "name: b\nschedule: '@daily'\nimage: busybox\n")
    run_cli("jobs", "apply", str(tmp_path / "jobs"))
    refused = run_cli("jobs", "delete", "b", expect=1)
    assert refused.stderr.strip() == (
        "job 'b' is chained to by 'a': change those first, or delete it anyway with --force"
    )
    assert "deleted b" in run_cli("jobs", "delete", "b", "--force").stdout
    shown = json.loads(run_cli("jobs", "show", "a", "--json").stdout)
    assert shown["definition"]["on_success"] == ["b"]

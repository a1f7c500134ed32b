"""`orchestrator runs prune` by the history rules: a job's `history:` over the
service-wide settings, the same runs kept, bad settings refused in one line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from orchestrator.records import NewRun, RunStatus, RunTrigger
from orchestrator.store.database import Database
from orchestrator.store.runs import RunRepository
from tests.conftest import Cli

NOW = datetime.now(UTC)

JOBS = """
- name: keeps-two
  schedule: "@every 1h"
  image: local/busybox:latest
  history: {keep: 2}
- name: keeps-all
  schedule: "@every 1h"
  image: local/busybox:latest
"""


def _history(database: Database) -> None:
    with database.session() as session:
        runs = RunRepository(session)
        for job in ("keeps-two", "keeps-all"):
            for hours in range(5):
                at = NOW - timedelta(hours=hours)
                runs.add(NewRun(job, at, RunTrigger.SCHEDULE, status=RunStatus.SUCCEEDED))


def _count(run_cli: Cli, job: str) -> int:
    return len(json.loads(run_cli("runs", "list", "--job", job, "--json").stdout))


def test_a_job_s_history_key_prunes_only_that_job(
    run_cli: Cli, database: Database, write_jobs
) -> None:  # type: ignore[no-untyped-def]
    run_cli("jobs", "apply", str(write_jobs("jobs.yaml", JOBS)))
    _history(database)
    dry = run_cli("runs", "prune", "--dry-run")
    assert dry.stdout == "would delete 3 run(s) of 1 job(s) by the history rules\n"
    assert (_count(run_cli, "keeps-two"), _count(run_cli, "keeps-all")) == (5, 5)
    assert run_cli("runs", "prune").stdout.startswith("deleted 3 run(s) of 1 job(s)")
    assert (_count(run_cli, "keeps-two"), _count(run_cli, "keeps-all")) == (2, 5)
    # the service-wide default reaches the job without `history:`
    wide = Cli(run_cli.database_url, {"ORCHESTRATOR_HISTORY_KEEP": "1"})
    wide("runs", "prune")
    assert (_count(run_cli, "keeps-two"), _count(run_cli, "keeps-all")) == (2, 1)


def test_bad_retention_settings_are_refused_in_one_line(run_cli: Cli) -> None:
    for env, value, said in (
        ("ORCHESTRATOR_HISTORY_KEEP", "lots", "ORCHESTRATOR_HISTORY_KEEP: 'lots' is not"),
        ("ORCHESTRATOR_HISTORY_KEEP", "0", "ORCHESTRATOR_HISTORY_KEEP: '0' is not"),
        ("ORCHESTRATOR_HISTORY_MAX_AGE", "soon", "ORCHESTRATOR_HISTORY_MAX_AGE: 'soon' is"),
        ("ORCHESTRATOR_AUDIT_MAX_AGE", "-1d", "ORCHESTRATOR_AUDIT_MAX_AGE: '-1d' is"),
    ):
        result = Cli(run_cli.database_url, {env: value})("runs", "prune", expect=2)
        assert said in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_history_key_that_keeps_nothing_is_refused(run_cli: Cli, write_jobs) -> None:  # type: ignore[no-untyped-def]
    bad = JOBS.replace("history: {keep: 2}", "history: {keep: 0}")
    result = run_cli("jobs", "validate", str(write_jobs("bad.yaml", bad)), expect=2)
    assert "job 'keeps-two': history.keep: 0 is not between 1 and 10000000" in result.stderr
    empty = JOBS.replace("history: {keep: 2}", "history: {}")
    result = run_cli("jobs", "validate", str(write_jobs("empty.yaml", empty)), expect=2)
    assert "history: needs keep (a number of runs) or max_age (like 90d)" in result.stderr

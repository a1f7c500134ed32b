"""The history's hot queries and how the database answers them: the very statements the
store runs for `runs list --job X`, `runs list --status failed --since`, `jobs list` (the
newest run of every job), the jobs page's strip of recent runs and the timeline, each with
the index it is meant to read (migration 0011), and the database's own plan of each
(SQLite `EXPLAIN QUERY PLAN`, PostgreSQL `EXPLAIN ANALYZE`). docs/service.md shows the
plans; tests/integration/store/test_query_plans.py keeps every query on its index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Executable

from orchestrator.records import RunStatus
from orchestrator.store.database import Database
from orchestrator.store.jobs import listing_query
from orchestrator.store.runs import list_query, recent_by_job_query, window_query


@dataclass(frozen=True)
class HotQuery:
    name: str
    what: str
    statement: Executable
    # Every one of these indexes appears in the plan.
    indexes: tuple[str, ...]


def hot_queries(now: datetime, dialect: str, job: str = "job-042") -> list[HotQuery]:
    """The hot queries as the store builds them, with the parameters a user gives."""
    return [
        HotQuery(
            "by_job",
            f"runs list --job {job} --limit 50",
            list_query(job=job, limit=50),
            ("ix_runs_job_name_scheduled_for_id",),
        ),
        HotQuery(
            "failed_since",
            "runs list --status failed --since 1d --limit 50",
            list_query(status=RunStatus.FAILED, since=now - timedelta(days=1), limit=50),
            ("ix_runs_status_scheduled_for_id",),
        ),
        HotQuery(
            "jobs_list",
            "jobs list (the newest run of every job)",
            listing_query(),
            ("ix_runs_job_name_scheduled_for_id",),
        ),
        HotQuery(
            "recent_by_job",
            "the jobs page's strip: each job's 10 newest runs of 7 days",
            recent_by_job_query(now - timedelta(days=7), 10, dialect),
            ("ix_runs_job_name_scheduled_for_id",),
        ),
        HotQuery(
            "timeline",
            "the timeline: runs scheduled, ended or unfinished in 24 hours",
            window_query(now - timedelta(hours=24), 5000),
            ("ix_runs_scheduled_for", "ix_runs_finished_at", "ix_runs_status_scheduled_for_id"),
        ),
    ]


def explain(database: Database, statement: Executable) -> list[str]:
    """The database's plan of `statement`, a line per step. PostgreSQL runs it
    (EXPLAIN ANALYZE, without timings, so that two plans compare)."""
    with database.connect() as connection:
        compiled = statement.compile(  # type: ignore[attr-defined]
            dialect=connection.dialect, compile_kwargs={"literal_binds": True}
        )
        if database.is_sqlite:
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
            return [str(row[-1]) for row in rows]
        rows = connection.exec_driver_sql(
            f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {compiled}"
        ).all()
        return [str(row[0]) for row in rows]

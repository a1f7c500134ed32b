"""The history's hot queries on SQLite and PostgreSQL, at 20,000 runs of 200 jobs: each
plan reads the index it was made for (migration 0011). The attack is a schema or a query
that makes the database scan or sort the whole history: the plan then names no index."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from benchmarks.api import seed_jobs
from benchmarks.history_fill import fill
from orchestrator.store.database import Database
from orchestrator.store.facade import Store
from orchestrator.store.plans import explain, hot_queries

RUNS = 20_000


@pytest.fixture
def history(database_url: str) -> Database:
    fill(database_url, RUNS, jobs=200, days=60)
    database = Database(database_url)
    seed_jobs(Store(database), 200)
    with database.connect() as connection:
        # Failures rare, as on a healthy host: only an index on status finds them fast.
        connection.execute(text("UPDATE runs SET status = 'succeeded' WHERE id % 500 <> 0"))
        connection.execute(text("ANALYZE"))
    return database


@pytest.mark.parametrize(
    "name", ["by_job", "failed_since", "jobs_list", "recent_by_job", "timeline"]
)
def test_each_hot_query_reads_its_index(history: Database, name: str) -> None:
    dialect = history.engine.dialect.name
    (query,) = [q for q in hot_queries(datetime.now(UTC), dialect) if q.name == name]
    plan = "\n".join(explain(history, query.statement))
    for index in query.indexes:
        assert index in plan, f"{query.what}: {index} not in the plan\n{plan}"
    # No pass over the whole table (the timeline's final join may hash a small table).
    if name != "timeline":
        assert "Seq Scan on runs" not in plan and "SCAN runs" not in plan, plan
    if name in ("by_job", "jobs_list"):
        assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan
    history.dispose()

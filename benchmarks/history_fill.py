"""Write a large run history fast: `runs` finished runs of `jobs` jobs spread evenly over
the last `days` days (90 % succeeded, 7 % failed, 2 % skipped, 1 % cancelled; every
tenth run with a 340-byte output tail). One INSERT ... SELECT, over generate_series on
PostgreSQL and a recursive CTE on SQLite: no rows cross into Python.

    .venv/bin/python -m benchmarks.history_fill URL [--runs 1000000] [--jobs 1000]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from sqlalchemy import text

from orchestrator.store import migrations
from orchestrator.store.database import Database

OUTPUT = "a line of output\n" * 20
_COLUMNS = (
    "job_name, trigger, attempt, scheduled_for, status, created_at, started_at, "
    "finished_at, exit_code, image, ports, error, output, output_truncated"
)
_STATUS_SQL = (
    "CASE WHEN i % 100 < 90 THEN 'succeeded' WHEN i % 100 < 97 THEN 'failed' "
    "WHEN i % 100 < 99 THEN 'skipped' ELSE 'cancelled' END"
)


def job_name(index: int) -> str:
    return f"job-{index:03d}"


def status_of(index: int) -> str:
    share = index % 100
    if share < 90:
        return "succeeded"
    if share < 97:
        return "failed"
    return "skipped" if share < 99 else "cancelled"


def fill(url: str, runs: int, jobs: int = 1000, days: int = 365) -> float:
    """Migrate the database, add the runs, ANALYZE; the seconds the writes took."""
    database = Database(url)
    migrations.upgrade(database)
    now = datetime.now(UTC)
    step = days * 86400 / runs
    started = time.perf_counter()
    with database.connect() as connection:
        if database.is_sqlite:
            # Naive UTC text, as UTCDateTime stores it there; whole seconds apart.
            connection.exec_driver_sql("PRAGMA cache_size = -262144")
            connection.execute(
                text(
                    "WITH RECURSIVE series(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM series "
                    "WHERE i < :runs), fires AS (SELECT i, strftime('%Y-%m-%d %H:%M:%S', "
                    ":now - (:runs - i) * :step, 'unixepoch') AS at FROM series) "
                    f"INSERT INTO runs ({_COLUMNS}) "
                    "SELECT printf('job-%03d', i % :jobs), 'schedule', 1, at || '.000000', "
                    f"{_STATUS_SQL}, at || '.000000', at || '.000000', "
                    "strftime('%Y-%m-%d %H:%M:%S', :now - (:runs - i) * :step + 3, "
                    "'unixepoch') || '.000000', "
                    "CASE WHEN i % 100 BETWEEN 90 AND 96 THEN 1 ELSE 0 END, "
                    "'local/busybox:latest', '{}', "
                    "CASE WHEN i % 100 BETWEEN 90 AND 96 THEN 'exit code 1' END, "
                    "CASE WHEN i % 10 = 0 THEN :output END, 0 FROM fires"
                ),
                {
                    "jobs": jobs,
                    "runs": runs,
                    "step": max(1, int(step)),
                    "now": int(now.timestamp()),
                    "output": OUTPUT,
                },
            )
        else:
            connection.execute(
                text(
                    f"INSERT INTO runs ({_COLUMNS}) "
                    "SELECT 'job-' || lpad((i % :jobs)::text, 3, '0'), 'schedule', 1, ts, "
                    f"{_STATUS_SQL}, ts, ts, ts + interval '3 seconds', "
                    "CASE WHEN i % 100 BETWEEN 90 AND 96 THEN 1 ELSE 0 END, "
                    "'local/busybox:latest', '{}'::json, "
                    "CASE WHEN i % 100 BETWEEN 90 AND 96 THEN 'exit code 1' END, "
                    "CASE WHEN i % 10 = 0 THEN :output END, false "
                    "FROM (SELECT i, CAST(:now AS timestamptz) "
                    "- (:runs - i) * :step * interval '1 second' AS ts "
                    "FROM generate_series(1, :runs) AS i) AS fires"
                ),
                {"jobs": jobs, "runs": runs, "step": step, "now": now, "output": OUTPUT},
            )
    seconds = time.perf_counter() - started
    with database.connect() as connection:
        connection.execute(text("ANALYZE"))
    database.dispose()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=1000)
    options = parser.parse_args()
    seconds = fill(options.url, options.runs, options.jobs)
    print(f"{options.runs} runs written in {seconds:.1f} s")


if __name__ == "__main__":
    main()

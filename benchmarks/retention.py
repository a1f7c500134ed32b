"""A million runs and retention, on SQLite and (with ORCHESTRATOR_TEST_POSTGRES_URL) on
PostgreSQL: the history's queries at the database, and how late a fire's write is while
the service prunes half of the history beside the same writes with no prune.

- `history_db.<db>.by_job_ms`: `runs list --job X --limit 50` (the store's query), median;
  `failed_since_ms`: `runs list --status failed --since 1d`; `jobs_list_ms`: `jobs list`
  with the last status of 1,000 jobs.
- `retention.<db>.fire_lateness_ms`: the 99th percentile of a fire's write (the insert
  of its run, what a prune's lock could delay) during the prune, beside
  `fire_lateness_baseline_ms` (the same writes, no prune); `pruned`, `prune_s`.

The full run fills 1,000,000 runs and prunes 500,000; --quick fills 20,000 and prunes
10,000 (the queries' plans are the same; the figures are a smaller table's).

    .venv/bin/python -m benchmarks.retention [--runs 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.api import seed_jobs
from benchmarks.history_fill import fill, job_name
from orchestrator.policies.retention import Retention, RetentionDefaults
from orchestrator.records import NewRun, RunStatus, RunTrigger
from orchestrator.service.retention import HistoryPruner
from orchestrator.store.database import Database
from orchestrator.store.facade import Store

DAYS = 365


def _median_ms(call: Callable[[], object], samples: int) -> float:
    call()
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2)


def _fire_writes(store: Store, seconds: float, tag: str, busy: Callable[[], bool]) -> list[float]:
    """A fire's write every 50 ms for `seconds` (or while `busy`): each one's latency."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    index = 0
    while time.monotonic() < deadline or busy():
        moment = datetime.now(UTC) + timedelta(microseconds=index)
        started = time.perf_counter()
        store.record_run(NewRun(f"probe-{tag}", moment, RunTrigger.SCHEDULE, RunStatus.SUCCEEDED))
        latencies.append((time.perf_counter() - started) * 1000)
        index += 1
        time.sleep(0.05)
    return latencies


def bench(url: str, runs: int, samples: int) -> dict[str, Any]:
    fill_s = fill(url, runs, 1000, DAYS)
    database = Database(url)
    store = Store(database)
    seed_jobs(store, 1000)
    now = datetime.now(UTC)
    queries = {
        "runs": runs,
        "fill_s": round(fill_s, 1),
        "by_job_ms": _median_ms(lambda: store.runs(job=job_name(42), limit=50), samples),
        "failed_since_ms": _median_ms(
            lambda: store.runs(status=RunStatus.FAILED, since=now - timedelta(days=1), limit=50),
            samples,
        ),
        "jobs_list_ms": _median_ms(store.job_listing, max(5, samples // 10)),
    }
    baseline = _fire_writes(store, 5.0, "base", lambda: False)
    # Half of the history is older than half a year: that half goes.
    defaults = RetentionDefaults(history=Retention(max_age=timedelta(days=DAYS // 2)))
    pruner = HistoryPruner(store, defaults, "bench:1:x")
    done = threading.Event()
    pruned: dict[str, float] = {}

    def prune() -> None:
        started = time.perf_counter()
        pruned["runs"] = pruner.prune().total_runs
        pruned["seconds"] = time.perf_counter() - started
        done.set()

    worker = threading.Thread(target=prune)
    worker.start()
    during = _fire_writes(store, 1.0, "prune", lambda: not done.is_set())
    worker.join()
    database.dispose()
    lateness = {
        "pruned": int(pruned["runs"]),
        "prune_s": round(pruned["seconds"], 1),
        "fire_lateness_ms": _p99(during),
        "fire_lateness_max_ms": round(max(during), 2),
        "fire_lateness_baseline_ms": _p99(baseline),
        "fires_during_prune": len(during),
    }
    return {"queries": queries, "lateness": lateness}


@contextmanager
def throwaway_database(server_url: str) -> Iterator[str]:
    """A database of its own on the server (others may be testing on it), dropped after."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from orchestrator.store.database import normalise_url

    server = normalise_url(server_url)
    name = f"orchestrator_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def retention(runs: int, samples: int) -> dict[str, Any]:
    databases = {}
    with tempfile.TemporaryDirectory() as folder:
        databases["sqlite"] = bench(f"sqlite:///{Path(folder) / 'history.db'}", runs, samples)
    postgres = os.environ.get("ORCHESTRATOR_TEST_POSTGRES_URL")
    if postgres:
        with throwaway_database(postgres) as url:
            databases["postgresql"] = bench(url, runs, samples)
    return {
        "history_db": {name: found["queries"] for name, found in databases.items()},
        "retention": {name: found["lateness"] for name, found in databases.items()},
    }


def run(quick: bool) -> dict[str, Any]:
    return retention(20_000, 30) if quick else retention(1_000_000, 200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=200)
    options = parser.parse_args()
    print(json.dumps(retention(options.runs, options.samples), indent=2))


if __name__ == "__main__":
    main()

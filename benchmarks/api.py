"""Benchmark: the HTTP API's run history with 100,000 runs, and the dashboard's jobs page
with 1,000 jobs, on SQLite and PostgreSQL.

For each database: 100,000 finished runs of 100 jobs (a tenth failed) are written, then
`orchestrator serve --http` is started on it and asked, over real HTTP, for
`GET /api/runs?job=X&limit=50` (a random job each time) and
`GET /api/runs?status=failed&since=7d&limit=50`, interleaved with the same queries made
straight through the store (no HTTP, no JSON): the raw figure beside ours. Medians and
p90 of --samples requests each. The jobs page (`GET /jobs`, signed in, all 1,000 jobs
with their next runs and recent-run strips) is timed beside its two store queries.

    .venv/bin/python -m benchmarks.api [--runs 100000] [--samples 200] [--json PATH]

PostgreSQL comes from ORCHESTRATOR_TEST_POSTGRES_URL (its public schema is replaced).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import insert, text

from benchmarks import wiring
from orchestrator.records import RunStatus
from orchestrator.store.facade import Store
from orchestrator.store.models import RunRow

TOKEN = "bench-" + "0" * 20
JOBS = 100  # the runs belong to this many jobs
PAGE_JOBS = 1000  # jobs defined, for the dashboard's jobs page


def seed_jobs(store: Store, count: int) -> None:
    """`count` jobs named as the runs' jobs are (job-000 ...), every fifth a cron line."""
    from orchestrator.spec import LoadedJob, parse_job

    loaded = [
        LoadedJob(
            parse_job(
                {
                    "name": f"job-{index:03d}",
                    "schedule": f"{index % 60} * * * *" if index % 5 == 0 else "@every 1h",
                    "image": "local/busybox:latest",
                    "command": ["true"],
                    "enabled": index % 7 != 0,
                }
            ),
            "bench",
        )
        for index in range(count)
    ]
    store.apply_jobs(loaded)


def seed(store: Store, runs: int) -> None:
    """`runs` finished runs of JOBS jobs, one a minute up to now, written in bulk."""
    database = store.database
    now = datetime.now(UTC)
    rows = []
    for index in range(runs):
        moment = now - timedelta(minutes=runs - index)
        failed = index % 10 == 0
        rows.append(
            {
                "job_name": f"job-{index % JOBS:03d}",
                "trigger": "schedule",
                "attempt": 1,
                "scheduled_for": moment,
                "status": "failed" if failed else "succeeded",
                "created_at": moment,
                "started_at": moment,
                "finished_at": moment + timedelta(seconds=3),
                "exit_code": 1 if failed else 0,
                "image": "local/busybox:latest",
                "ports": {},
                "error": "exit code 1" if failed else None,
                "output": "a line of output\n" * 20,
                "output_truncated": False,
            }
        )
    with database.session() as session:
        for start in range(0, len(rows), 5000):
            session.execute(insert(RunRow), rows[start : start + 5000])
    if not database.is_sqlite:
        with database.connect() as connection:
            connection.execute(text("ANALYZE"))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(samples: int, ours: Callable[[], None], raw: Callable[[], None]) -> dict[str, float]:
    mine, theirs = [], []
    for _ in range(samples):  # interleaved: both see the same machine at the same time
        started = time.perf_counter()
        ours()
        mine.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        raw()
        theirs.append((time.perf_counter() - started) * 1000)
    return {
        "median_ms": round(statistics.median(mine), 2),
        "p90_ms": round(percentile(mine, 0.9), 2),
        "raw_median_ms": round(statistics.median(theirs), 2),
        "raw_p90_ms": round(percentile(theirs, 0.9), 2),
    }


def bench(url: str, runs: int, samples: int, folder: Path) -> dict[str, Any]:
    with wiring.store_at(url, empty=True, upgrade=True) as store:
        return _bench(store, url, runs, samples, folder)


def _bench(store: Store, url: str, runs: int, samples: int, folder: Path) -> dict[str, Any]:
    started = time.perf_counter()
    seed_jobs(store, PAGE_JOBS)
    seed(store, runs)
    seeded = time.perf_counter() - started
    log = folder / "serve.log"
    env = {
        **os.environ,
        "ORCHESTRATOR_DATABASE_URL": url,
        "ORCHESTRATOR_API_TOKEN": TOKEN,
        "ORCHESTRATOR_HEALTH_FILE": str(folder / "health.json"),
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "serve", "--http", "127.0.0.1:0"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r"listening on (http://\S+)", log.read_text())):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(log.read_text())
            time.sleep(0.1)
        base = found[1]
        session = requests.Session()  # keep-alive, as a dashboard or a script would
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        pick = random.Random(7)
        since = datetime.now(UTC) - timedelta(days=7)

        def by_job() -> None:
            job = f"job-{pick.randrange(JOBS):03d}"
            response = session.get(f"{base}/api/runs", params={"job": job, "limit": 50})
            assert response.status_code == 200 and len(response.json()) == 50

        def raw_by_job() -> None:
            assert len(store.runs(job=f"job-{pick.randrange(JOBS):03d}", limit=50)) == 50

        def failed_since() -> None:
            response = session.get(
                f"{base}/api/runs", params={"status": "failed", "since": "7d", "limit": 50}
            )
            assert response.status_code == 200 and len(response.json()) == 50

        def raw_failed_since() -> None:
            assert len(store.runs(status=RunStatus.FAILED, since=since, limit=50)) == 50

        browser = requests.Session()  # the dashboard, signed in through its form
        form = browser.get(f"{base}/signin").text.split('action="/signin"', 1)[1]
        csrf = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        signed = browser.post(
            f"{base}/signin", data={"token": TOKEN, "csrf": csrf}, allow_redirects=False
        )
        assert signed.status_code == 303, signed.text[:300]

        def jobs_page() -> None:
            response = browser.get(f"{base}/jobs")
            assert response.status_code == 200 and response.text.count("data-job=") == PAGE_JOBS

        def raw_jobs_page() -> None:  # the page's two queries, straight through the store
            assert len(store.jobs()) == PAGE_JOBS
            store.recent_runs_by_job(datetime.now(UTC) - timedelta(days=7), 10)

        for _ in range(10):  # warm both paths
            by_job()
            raw_by_job()
        jobs_page()
        return {
            "runs": runs,
            "jobs": PAGE_JOBS,
            "seed_s": round(seeded, 1),
            "by_job": measure(samples, by_job, raw_by_job),
            "failed_since": measure(samples, failed_since, raw_failed_since),
            "jobs_page": measure(max(samples // 10, 10), jobs_page, raw_jobs_page),
        }
    finally:
        process.terminate()
        process.wait(15)


def bench_all(runs: int, samples: int) -> dict[str, Any]:
    """`bench` on SQLite, and on ORCHESTRATOR_TEST_POSTGRES_URL when it is set."""
    results: dict[str, Any] = {"cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as folder:
        results["sqlite"] = bench(f"sqlite:///{folder}/bench.db", runs, samples, Path(folder))
    postgres = os.environ.get("ORCHESTRATOR_TEST_POSTGRES_URL")
    if postgres:
        with tempfile.TemporaryDirectory() as folder:
            results["postgresql"] = bench(postgres, runs, samples, Path(folder))
    return results


def run(quick: bool) -> dict[str, Any]:
    return bench_all(20_000, 60) if quick else bench_all(100_000, 200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    results = bench_all(args.runs, args.samples)
    print("| database | query | ours median (p90) | raw store median (p90) |")
    print("|---|---|---|---|")
    for name in ("sqlite", "postgresql"):
        if name not in results:
            continue
        for query in ("by_job", "failed_since", "jobs_page"):
            figure = results[name][query]
            print(
                f"| {name} | {query} | {figure['median_ms']} ms ({figure['p90_ms']}) | "
                f"{figure['raw_median_ms']} ms ({figure['raw_p90_ms']}) |"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""History: the HTTP API's run history and the dashboard's jobs page (benchmarks/api.py)
on SQLite, and on PostgreSQL when ORCHESTRATOR_TEST_POSTGRES_URL is set, reduced to the
figures the harness reports: ours beside the store's own query.

    .venv/bin/python -m benchmarks.history [--runs 100000] [--samples 200]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from benchmarks.api import bench_all


def history(runs: int, samples: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, figures in bench_all(runs, samples).items():
        if name == "cores":
            continue
        results[name] = {
            "runs": runs,
            "by_job_ms": figures["by_job"]["median_ms"],
            "by_job_raw_ms": figures["by_job"]["raw_median_ms"],
            "failed_since_ms": figures["failed_since"]["median_ms"],
            "failed_since_raw_ms": figures["failed_since"]["raw_median_ms"],
            "jobs_page_ms": figures["jobs_page"]["median_ms"],
            "jobs_page_raw_ms": figures["jobs_page"]["raw_median_ms"],
        }
    return results


def run(quick: bool) -> dict[str, Any]:
    return history(20_000, 60) if quick else history(100_000, 200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=200)
    options = parser.parse_args()
    print(json.dumps(history(options.runs, options.samples), indent=2))


if __name__ == "__main__":
    main()

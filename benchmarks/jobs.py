"""Benchmark: `jobs apply` of 1,000 definitions and `jobs list --json` of 1,000 jobs.

Each figure is the wall time of the real `orchestrator` command in a subprocess
(interpreter start-up included), the median of --repeat runs on a fresh database.
Targets (issue 2): apply under 5 s, list under 1 s, on SQLite.

    .venv/bin/python -m benchmarks.jobs [--jobs 1000] [--repeat 3] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCHEDULES = [
    "0 3 * * *",
    "*/5 * * * *",
    "@every 30s",
    "30 */15 * * * *",
    "0 9 * * mon-fri",
    "15 14 1 * *",
    "@hourly",
    "0 0 1,15 * 3",
]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]


def write_definitions(folder: Path, count: int) -> None:
    rng = random.Random(1)
    for index in range(count):
        (folder / f"job-{index:04d}.yaml").write_text(
            f"""name: job-{index:04d}
schedule: "{rng.choice(SCHEDULES)}"
timezone: {rng.choice(ZONES)}
image: local/busybox:latest
command: ["sh", "-c", "echo {index}"]
environment: {{INDEX: "{index}", KIND: bench}}
volumes: ["/srv/data/{index}:/data", "cache-{index % 10}:/cache:ro"]
ports: ["8080"]
timeout: 15m
retries: {{count: 2, backoff: 30s}}
catchup: {{policy: latest, deadline: 1h}}
resources: {{memory: 64m, cpus: 0.5}}
"""
        )


def timed(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {result.stderr}")
    return elapsed, result.stdout


def measure(count: int, repeat: int, database_url: str | None = None) -> dict[str, list[float]]:
    """Each figure's wall times, one a repeat (on a fresh SQLite file each, or on
    `database_url` emptied of jobs first)."""
    figures: dict[str, list[float]] = {
        "apply (create)": [],
        "apply (unchanged)": [],
        "list --json": [],
        "interpreter start": [],
    }
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        definitions = root / "jobs"
        definitions.mkdir()
        write_definitions(definitions, count)
        for index in range(repeat):
            url = database_url or f"sqlite:///{root / f'bench-{index}.db'}"
            env = {**os.environ, "ORCHESTRATOR_DATABASE_URL": url}
            timed(["db", "upgrade"], env, root)
            if database_url:  # reuse: start from no jobs
                timed(["jobs", "apply", str(definitions), "--prune"], env, root)
                empty = root / "empty"
                empty.mkdir(exist_ok=True)
                (empty / "one.yaml").write_text("name: placeholder\nschedule: '@daily'\nimage: x\n")
                timed(["jobs", "apply", str(empty), "--prune"], env, root)
            seconds, out = timed(["jobs", "apply", str(definitions)], env, root)
            assert f"{count} created" in out or database_url, out
            figures["apply (create)"].append(seconds)
            seconds, out = timed(["jobs", "apply", str(definitions)], env, root)
            assert f"{count} unchanged" in out, out
            figures["apply (unchanged)"].append(seconds)
            seconds, out = timed(["jobs", "list", "--json"], env, root)
            assert out.count('"name"') >= count
            figures["list --json"].append(seconds)
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            figures["interpreter start"].append(time.perf_counter() - start)

    return figures


def run(quick: bool) -> dict[str, Any]:
    """Each figure's median (seconds), of 1 repeat (quick) or 3."""
    count, repeat = 1000, 1 if quick else 3
    figures = measure(count, repeat)
    keys = {
        "apply (create)": "apply_create_s",
        "apply (unchanged)": "apply_unchanged_s",
        "list --json": "list_s",
        "interpreter start": "python_s",
    }
    medians = {keys[name]: round(statistics.median(values), 3) for name, values in figures.items()}
    return {"jobs": count, "repeat": repeat, **medians}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", help="default: a fresh SQLite file per repeat")
    options = parser.parse_args()
    figures = measure(options.jobs, options.repeat, options.database_url)
    print(f"{options.jobs} job definitions, {options.repeat} repeats, median wall time:")
    for name, values in figures.items():
        print(
            f"  {name:20} {statistics.median(values):6.3f} s   (runs: "
            + ", ".join(f"{v:.3f}" for v in values)
            + ")"
        )


if __name__ == "__main__":
    main()

"""What every benchmark shares: the floors and their verdicts, the report's table, and the
set-up around the real `orchestrator` (a scratch database, the CLI, a running service).

A quick run fails at twice a floor (half, for a "min"), so that noise cannot fail a build;
a full run at the floor. The raw engine's side of every figure is in benchmarks/raw.py;
the package's own objects are built in benchmarks/wiring.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

IMAGE = os.environ.get("ORCHESTRATOR_JOB_IMAGE", "local/busybox:latest")
LABEL = "orchestrator.bench"

# (key, the floor, how it compares, what it says).
FLOORS: list[tuple[str, float, str, str]] = [
    ("dispatch.ratio", 1.15, "max", "dispatch vs raw create+start"),
    ("burst.ratio", 1.15, "max", "50-job burst vs raw burst of 50"),
    ("burst.missing_fires", 0, "zero", "fires missing in the burst window"),
    ("sustained.lateness_ratio", 1.15, "max", "start lateness, 20 jobs every 5 s, vs raw loop"),
    ("sustained.missing_fires", 0, "zero", "fires missing under sustained load"),
    ("output.rate_ratio", 0.8, "min", "output capture rate vs docker logs"),
    ("saturation.ratio", 0.9, "min", "runs started per second at saturation vs raw best"),
    ("output.rss_growth_mb", 20, "max", "memory growth capturing output"),
    ("cli.help_ratio", 3.0, "max", "orchestrator --help vs bare python"),
    ("cli.help_click_ratio", 1.5, "max", "orchestrator --help vs python -c 'import click'"),
    ("cli.list_1000_s", 0.5, "max", "jobs list --json of 1,000 jobs"),
    ("cli.list_ratio", 1.5, "max", "jobs list --json vs SQLAlchemy reading the same rows"),
    ("history.sqlite.by_job_ms", 50, "max", "GET /api/runs?job=X (SQLite)"),
    ("history.postgresql.by_job_ms", 50, "max", "GET /api/runs?job=X (PostgreSQL)"),
    ("history.sqlite.jobs_page_ms", 300, "max", "dashboard jobs page, 1,000 jobs (SQLite)"),
    ("history.sqlite.failed_since_ms", 50, "max", "GET /api/runs?status=failed (SQLite)"),
    ("history.postgresql.failed_since_ms", 50, "max", "GET /api/runs?status=failed (PostgreSQL)"),
    ("history.postgresql.jobs_page_ms", 300, "max", "dashboard jobs page, 1,000 jobs (PostgreSQL)"),
    (
        "history_db.sqlite.by_job_ms",
        20,
        "max",
        "runs list --job X --limit 50 at the database (SQLite)",
    ),
    (
        "history_db.sqlite.failed_since_ms",
        20,
        "max",
        "runs list --status failed --since 1d (SQLite)",
    ),
    ("history_db.sqlite.jobs_list_ms", 200, "max", "jobs list, last status of 1,000 jobs (SQLite)"),
    ("history_db.postgresql.by_job_ms", 20, "max", "runs list --job X --limit 50 (PostgreSQL)"),
    ("history_db.postgresql.failed_since_ms", 20, "max", "runs list --status failed (PostgreSQL)"),
    (
        "history_db.postgresql.jobs_list_ms",
        200,
        "max",
        "jobs list, last status of 1,000 jobs (PostgreSQL)",
    ),
    (
        "retention.sqlite.fire_lateness_ms",
        200,
        "max",
        "a fire's write during a prune, p99 (SQLite)",
    ),
    (
        "retention.postgresql.fire_lateness_ms",
        200,
        "max",
        "a fire's write during a prune (PostgreSQL)",
    ),
    ("viewers.healthz.max_ms", 1000, "max", "/healthz under 200 log viewers, slowest"),
    ("viewers.jobs.max_ms", 1000, "max", "GET /api/jobs under 200 log viewers, slowest"),
    ("viewers.refused", 0, "zero", "log viewers not served (200, the default caps)"),
    ("scale.startup_ratio", 2.0, "max", "start-up, 10,000 jobs, vs APScheduler adding them"),
    ("scale.idle_cpu_pct", 0.3, "max", "idle CPU, 10,000 jobs, % of a core"),
    ("scale.rss_mb", 100, "max", "resident memory, 10,000 jobs, --http off (MB)"),
]

Check = tuple[str, str, Any, str, bool]

# --- verdicts -------------------------------------------------------------------------------


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def verdicts(flat: dict[str, Any], slack: float) -> list[Check]:
    """(key, what, value, floor, passed) for every floor with a figure; `slack` multiplies
    the allowed figure (2 for --quick)."""
    found = []
    for key, floor, how, what in FLOORS:
        if key not in flat:
            continue
        value = flat[key]
        if how == "zero":
            passed, shown = value == 0, "0"
        elif how == "max":
            passed, shown = value <= floor * slack, f"<= {floor}"
        else:
            passed, shown = value >= floor / slack, f">= {floor}"
        found.append((key, what, value, shown, passed))
    return found


def failing(checks: list[Check]) -> list[str]:
    """The keys that fail the run: every floor missed (by the run's slack)."""
    return [key for key, _, _, _, passed in checks if not passed]


# --- the report -----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    from benchmarks import raw

    try:
        version = raw.engine_version()
    except Exception as error:  # the table still says which figures exist
        version = f"unknown ({error})"
    return {"cores": os.cpu_count(), "engine": version, "python": sys.version.split()[0]}


def report(results: dict[str, Any], quick: bool) -> list[Check]:
    """Print the figures' table and the floors' table of a run's `results` (as written to
    --json); the floors' verdicts, judged with the run's slack."""
    flat = flatten({k: v for k, v in results.items() if k not in ("machine", "seconds", "quick")})
    facts = results["machine"]
    print(
        f"\n{'Quick' if quick else 'Full'} run, {facts['cores']} cores, engine "
        f"{facts['engine']}, Python {facts['python']}\n"
    )
    print("| figure | value |\n|---|---|")
    for key, value in flat.items():
        print(f"| `{key}` | {value} |")
    checks = verdicts(flat, 2.0 if quick else 1.0)
    print("\n| floor | figure | value | allowed | |\n|---|---|---|---|---|")
    for key, what, value, shown, passed in checks:
        verdict = "ok" if passed else "MISSED"
        print(f"| {what} | `{key}` | {value} | {shown} | {verdict} |")
    return checks


# --- the set-up around the real orchestrator ------------------------------------------------


def scratch_env(scratch: str, label: str | None = None, **settings: str) -> dict[str, str]:
    """The environment of an `orchestrator` on a fresh SQLite file in `scratch`, its
    containers labelled `orchestrator.bench=label`; more ORCHESTRATOR_* `settings`."""
    env = {**os.environ, "ORCHESTRATOR_DATABASE_URL": f"sqlite:///{scratch}/bench.db"}
    if label:
        env["ORCHESTRATOR_CONTAINER_LABELS"] = f"{LABEL}={label}"
    env.update({f"ORCHESTRATOR_{name.upper()}": value for name, value in settings.items()})
    return env


def orchestrator(env: dict[str, str], cwd: str, *args: str) -> str:
    """`orchestrator ARGS` run to its end (failing on an error); its standard output."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env=env,
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@contextmanager
def serving(
    env: dict[str, str],
    cwd: str,
    *args: str,
    ready_s: float = 60,
    stop_s: float = 60,
    quiet: bool = True,
) -> Iterator[subprocess.Popen[bytes]]:
    """`orchestrator serve ARGS` in the background, given once its health file exists (or
    `ready_s` has passed; 0 to not wait), stopped by SIGTERM on the way out."""
    health = Path(cwd) / "health.json"
    sink = subprocess.DEVNULL if quiet else None
    service = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "serve", *args],
        env={**env, "ORCHESTRATOR_HEALTH_FILE": str(health)},
        cwd=cwd,
        stdout=sink,
        stderr=sink,
    )
    try:
        deadline = time.monotonic() + ready_s
        while not health.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield service
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(stop_s)


def every_jobs(prefix: str, count: int, every: float) -> str:
    """The YAML of `count` jobs running `true` every `every` seconds, all due in the same
    second (`prefix-00` ...), overlapping allowed and no catch-up."""
    return "".join(
        f'- {{name: {prefix}-{i:02d}, schedule: "@every {every:g}s", image: "{IMAGE}", '
        'command: ["true"], concurrency: allow, catchup: none}\n'
        for i in range(count)
    )


def next_due(every: float, after: float) -> float:
    """The first multiple of `every` seconds of the epoch after `after` (what `@every`
    does in the service: fires on the wall clock's multiples)."""
    return (int(after // every) + 1) * every

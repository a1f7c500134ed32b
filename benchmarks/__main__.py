"""Every benchmark, each figure beside the raw figure measured in the same run.

    .venv/bin/python -m benchmarks [--quick] [--json PATH] [--only NAME ...]

Prints a Markdown table (with the machine's cores and the engine's version) and, with
--json, writes the figures under stable keys (`dispatch.ratio`, `burst.ratio`,
`burst.missing_fires`, `output.rate_ratio`, `output.rss_growth_mb`, `cli.help_ratio`,
`cli.list_1000_s`, `history.sqlite.by_job_ms`, `saturation.ratio`, ...). `--quick` (a
few minutes) is what CI runs: it fails (exit 1) only where a figure misses its floor by
far (twice the allowed ratio or time, or any missing fire), so that noise cannot fail a
build; the full run's table goes to benchmarks/RESULTS.md by hand, with its date and machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.saturation import saturation
from benchmarks.sustained import sustained

ROOT = Path(__file__).resolve().parents[1]
IMAGE = os.environ.get("ORCHESTRATOR_JOB_IMAGE", "local/busybox:latest")
LABEL = "orchestrator.bench"
# Bursts come this far apart: a burst of 50 drains in about 15 s on 2 cores, so each
# meets an idle service, as each raw burst meets an idle engine.
BURST_EVERY = 30

# (key, the floor, how it compares, what it says). A quick run fails at twice the floor
# (half, for a "min"), so that noise cannot fail a build; a full run at the floor.
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
]


def _docker() -> Any:
    import docker

    return docker.from_env(timeout=120, max_pool_size=64)


def _cleanup(client: Any) -> None:
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        container.remove(force=True)


def _orchestrator(env: dict[str, str], cwd: str, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env=env,
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


# --- dispatch -------------------------------------------------------------------------------


def dispatch(samples: int) -> dict[str, Any]:
    """From the user's call (the run's insert included) to its container running, against
    raw SDK create+start of the same image and command, interleaved."""
    from orchestrator.engine import DockerEngine
    from orchestrator.launcher import LaunchSettings, RunLauncher
    from orchestrator.records import RunTrigger
    from orchestrator.selfcontainer import locate_self
    from orchestrator.spec import parse_job
    from orchestrator.store import migrations
    from orchestrator.store.database import Database

    client = _docker()
    spec = parse_job({"name": "bench", "schedule": "@daily", "image": IMAGE, "command": ["true"]})
    with tempfile.TemporaryDirectory() as scratch:
        database = Database(f"sqlite:///{scratch}/bench.db")
        migrations.upgrade(database)
        engine = DockerEngine.from_env()
        launcher = RunLauncher(
            database,
            engine,
            locate_self(engine, None),
            LaunchSettings(extra_labels=((LABEL, "dispatch"),)),
        )

        def ours() -> float:
            marks: dict[str, float] = {}
            started = time.perf_counter()
            run = launcher.queue(spec, RunTrigger.MANUAL)
            launcher.execute(
                run, spec, on_running=lambda _: marks.setdefault("at", time.perf_counter())
            )
            return marks["at"] - started

        def raw() -> float:
            started = time.perf_counter()
            created = client.api.create_container(IMAGE, ["true"], labels={LABEL: "dispatch"})
            client.api.start(created["Id"])
            elapsed = time.perf_counter() - started
            client.api.wait(created["Id"])
            client.api.remove_container(created["Id"], force=True)
            return elapsed

        for _ in range(2):  # warm both paths
            ours()
            raw()
        mine, theirs = [], []
        for _ in range(samples):
            theirs.append(raw())
            mine.append(ours())
        engine.close()
        database.dispose()
    _cleanup(client)
    ours_ms, raw_ms = statistics.median(mine) * 1000, statistics.median(theirs) * 1000
    return {
        "samples": samples,
        "ours_ms": round(ours_ms, 1),
        "raw_ms": round(raw_ms, 1),
        "ratio": round(ours_ms / raw_ms, 3),
    }


# --- burst ----------------------------------------------------------------------------------


def raw_burst(client: Any, size: int) -> float:
    """Seconds until the last of `size` containers runs, created+started by as many
    threads as the service launches with (ORCHESTRATOR_MAX_PARALLEL_LAUNCHES)."""
    from orchestrator.settings import DEFAULT_MAX_PARALLEL_LAUNCHES

    workers = DEFAULT_MAX_PARALLEL_LAUNCHES
    barrier = threading.Barrier(workers + 1)
    ids: list[str] = []
    lock = threading.Lock()
    left = list(range(size))

    def one() -> None:
        barrier.wait()
        while True:
            with lock:
                if not left:
                    return
                left.pop()
            created = client.api.create_container(IMAGE, ["true"], labels={LABEL: "burst"})
            client.api.start(created["Id"])
            with lock:
                ids.append(created["Id"])

    threads = [threading.Thread(target=one) for _ in range(workers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for container_id in ids:
        client.api.remove_container(container_id, force=True)
    return elapsed


def burst(size: int, seconds: float, raw_bursts: int) -> dict[str, Any]:
    """`size` jobs due in the same second, every BURST_EVERY seconds (apart enough that
    each burst meets an idle service, as the raw bursts meet an idle engine) for
    `seconds`: per burst, the time from the fire to the last of its containers running;
    every burst counted (one that did not complete by the end counts as never: the
    median can be infinite); missing fires over the whole window, from the first due
    fire to the stop. Raw bursts of `size` before and after, in the same run."""
    import signal
    from datetime import UTC, datetime

    from orchestrator.records import RunStatus
    from orchestrator.store.database import Database
    from orchestrator.store.facade import Store

    client = _docker()
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            **os.environ,
            "ORCHESTRATOR_DATABASE_URL": f"sqlite:///{scratch}/bench.db",
            "ORCHESTRATOR_CONTAINER_LABELS": f"{LABEL}=burst",
            "ORCHESTRATOR_HEALTH_FILE": f"{scratch}/health.json",
        }
        jobs = Path(scratch) / "jobs.yaml"
        jobs.write_text(
            "".join(
                f'- {{name: burst-{i:02d}, schedule: "@every {BURST_EVERY}s", image: "{IMAGE}", '
                'command: ["true"], concurrency: allow, catchup: none}\n'
                for i in range(size)
            )
        )
        raw = [raw_burst(client, size) for _ in range(raw_bursts)]
        _orchestrator(env, scratch, "db", "upgrade")
        service = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "serve", "--jobs", str(jobs)],
            env=env,
            cwd=scratch,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        database = Database(env["ORCHESTRATOR_DATABASE_URL"])
        store = Store(database)
        try:
            health = Path(scratch) / "health.json"
            deadline = time.monotonic() + 60
            while not health.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            # The window: from the first due time after the service is ready, `seconds`.
            first = (int(time.time() // BURST_EVERY) + 1) * BURST_EVERY
            due_times = [
                datetime.fromtimestamp(first + k * BURST_EVERY, UTC)
                for k in range(max(int(seconds // BURST_EVERY), 1))
            ]
            last_due = due_times[-1].timestamp()
            time.sleep(max(last_due - time.time(), 0))
            # Until the last burst has started in full (or two bursts' time has passed).
            until = time.monotonic() + 2 * BURST_EVERY
            while time.monotonic() < until:
                runs = [r for r in store.runs(limit=None) if r.scheduled_for in due_times]
                if len(runs) == size * len(due_times) and all(r.started_at for r in runs):
                    break
                time.sleep(0.5)
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(60)
        runs = [r for r in store.runs(limit=None) if r.scheduled_for in due_times]
        database.dispose()
        raw += [raw_burst(client, size) for _ in range(raw_bursts)]
    _cleanup(client)
    seen = {(r.job, r.scheduled_for) for r in runs}
    missing = sum(
        1 for moment in due_times for i in range(size) if (f"burst-{i:02d}", moment) not in seen
    )
    per_burst = []
    for moment in due_times:
        members = [r for r in runs if r.scheduled_for == moment]
        if len(members) < size or not all(m.started_at for m in members):
            per_burst.append(float("inf"))
            continue
        per_burst.append(
            max((m.started_at - moment).total_seconds() for m in members if m.started_at)
        )
    ours = statistics.median(per_burst)
    raw_median = statistics.median(raw)
    failed = sum(r.status is not RunStatus.SUCCEEDED for r in runs if r.status.finished)
    return {
        "size": size,
        "every_s": BURST_EVERY,
        "bursts": len(due_times),
        "incomplete_bursts": sum(1 for b in per_burst if b == float("inf")),
        "missing_fires": missing,
        "not_succeeded": failed,
        "ours_ms": round(ours * 1000, 1),
        "ours_each_ms": [round(b * 1000, 1) for b in per_burst],
        "raw_ms": round(raw_median * 1000, 1),
        "raw_each_ms": [round(b * 1000, 1) for b in raw],
        "ratio": round(ours / raw_median, 3),
    }


# --- output ---------------------------------------------------------------------------------


def output(megabytes: int) -> dict[str, Any]:
    """A job writing `megabytes` MB of short lines, captured by `jobs run` (less a silent
    job's run, so the CLI's and the container's fixed costs cancel): the rate against
    `docker logs --follow` of the same command started raw; peak RSS (the kernel's high
    water mark through the run) against the silent job's."""
    client = _docker()
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            **os.environ,
            "ORCHESTRATOR_DATABASE_URL": f"sqlite:///{scratch}/out.db",
            "ORCHESTRATOR_CONTAINER_LABELS": f"{LABEL}=output",
            "ORCHESTRATOR_KEEP_CONTAINERS": "true",
        }
        size = megabytes * 1000 * 1000
        (Path(scratch) / "jobs.yaml").write_text(
            f'- {{name: quiet, schedule: "@daily", image: "{IMAGE}", command: ["true"]}}\n'
            f'- {{name: loud, schedule: "@daily", image: "{IMAGE}", command: ["sh", "-c", '
            f'"yes 0123456789012345678901234567890123456789 | head -c {size}"]}}\n'
        )
        _orchestrator(env, scratch, "db", "upgrade")
        _orchestrator(env, scratch, "jobs", "apply", f"{scratch}/jobs.yaml")
        code = (
            "import resource, subprocess, sys\n"
            "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        )

        def peak(job: str) -> tuple[float, float]:
            started = time.perf_counter()
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    code,
                    sys.executable,
                    "-m",
                    "orchestrator",
                    "jobs",
                    "run",
                    job,
                ],
                env=env,
                cwd=scratch,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            return int(out.strip()) / 1024, time.perf_counter() - started

        quiet_mb, quiet_s = peak("quiet")
        loud_mb, loud_s = peak("loud")
        run = json.loads(_orchestrator(env, scratch, "runs", "show", "2", "--json"))
        # Raw: the same command in a container of its own, its output followed live by
        # `docker logs --follow` from its start to its end (what our capture does).
        command = "yes 0123456789012345678901234567890123456789 | head -c " + str(size)
        created = subprocess.run(
            ["docker", "create", "--label", f"{LABEL}=output", IMAGE, "sh", "-c", command],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        started = time.perf_counter()
        subprocess.run(["docker", "start", created], capture_output=True, check=True)
        with open(os.devnull, "wb") as sink:
            subprocess.run(
                ["docker", "logs", "--follow", created], stdout=sink, stderr=sink, check=True
            )
        raw_s = time.perf_counter() - started
    _cleanup(client)
    ours_s = max(loud_s - quiet_s, 0.001)  # the capture, less a silent run's fixed cost
    return {
        "megabytes": megabytes,
        "ours_mb_s": round(megabytes / ours_s, 2),
        "raw_mb_s": round(megabytes / raw_s, 2),
        "rate_ratio": round(raw_s / ours_s, 3),
        "rss_quiet_mb": round(quiet_mb, 1),
        "rss_loud_mb": round(loud_mb, 1),
        "rss_growth_mb": round(loud_mb - quiet_mb, 1),
        "status": run["status"],
    }


# --- the CLI's start-up ---------------------------------------------------------------------


# The floor of `jobs list --json` for any program that keeps its jobs through SQLAlchemy's
# ORM: the interpreter, SQLAlchemy and its ORM imported, the rows read in one query and
# printed as JSON; nothing of ours.
RAW_LIST = """
import json, sys
import sqlalchemy
from sqlalchemy.orm import Session
with Session(sqlalchemy.create_engine(sys.argv[1])) as session:
    rows = session.execute(sqlalchemy.text("SELECT name, definition, enabled FROM jobs")).all()
print(json.dumps([{"name": n, "job": json.loads(d), "enabled": bool(e)} for n, d, e in rows]))
"""


def cli(repeat: int, jobs: int) -> dict[str, Any]:
    """`orchestrator --help` beside the bare interpreter's start-up and `import click`;
    `jobs list --json` of `jobs` jobs beside RAW_LIST; medians of `repeat`, interleaved."""
    from benchmarks.jobs import write_definitions

    def timed(args: list[str], env: dict[str, str], cwd: str) -> float:
        started = time.perf_counter()
        subprocess.run(args, env=env, cwd=cwd, check=True, capture_output=True)
        return time.perf_counter() - started

    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "ORCHESTRATOR_DATABASE_URL": f"sqlite:///{scratch}/cli.db"}
        folder = Path(scratch) / "jobs"
        folder.mkdir()
        write_definitions(folder, jobs)
        _orchestrator(env, scratch, "db", "upgrade")
        _orchestrator(env, scratch, "jobs", "apply", str(folder))
        bare, click, helped, listed, raw = [], [], [], [], []
        orchestrator = [sys.executable, "-m", "orchestrator"]
        for _ in range(repeat):  # interleaved
            bare.append(timed([sys.executable, "-c", "pass"], env, scratch))
            click.append(timed([sys.executable, "-c", "import click"], env, scratch))
            helped.append(timed([*orchestrator, "--help"], env, scratch))
            listed.append(timed([*orchestrator, "jobs", "list", "--json"], env, scratch))
            url = env["ORCHESTRATOR_DATABASE_URL"]
            raw.append(timed([sys.executable, "-c", RAW_LIST, url], env, scratch))
    median = statistics.median
    return {
        "python_s": round(median(bare), 3),
        "import_click_s": round(median(click), 3),
        "help_s": round(median(helped), 3),
        "help_ratio": round(median(helped) / median(bare), 2),
        "help_click_ratio": round(median(helped) / median(click), 2),
        "list_1000_s": round(median(listed), 3),
        "list_raw_s": round(median(raw), 3),
        "list_ratio": round(median(listed) / median(raw), 2),
        "jobs": jobs,
    }


# --- history --------------------------------------------------------------------------------


def history(runs: int, samples: int) -> dict[str, Any]:
    from benchmarks.api import bench

    results: dict[str, Any] = {}
    urls = [("sqlite", None)]
    if os.environ.get("ORCHESTRATOR_TEST_POSTGRES_URL"):
        urls.append(("postgresql", os.environ["ORCHESTRATOR_TEST_POSTGRES_URL"]))
    for name, url in urls:
        with tempfile.TemporaryDirectory() as folder:
            figures = bench(url or f"sqlite:///{folder}/bench.db", runs, samples, Path(folder))
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


# --- the harness ----------------------------------------------------------------------------

QUICK = {
    "dispatch": lambda: dispatch(8),
    "burst": lambda: burst(50, 30, 1),
    "sustained": lambda: sustained(20, 5, 30, 1),
    "output": lambda: output(20),
    "cli": lambda: cli(3, 1000),
    "history": lambda: history(20_000, 60),
}
FULL = {
    "dispatch": lambda: dispatch(30),
    "burst": lambda: burst(50, 120, 3),
    "sustained": lambda: sustained(20, 5, 120, 3),
    "output": lambda: output(100),
    "cli": lambda: cli(5, 1000),
    "history": lambda: history(100_000, 200),
    "saturation": lambda: saturation(300, 20),
}


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def verdicts(flat: dict[str, Any], slack: float) -> list[tuple[str, str, Any, str, bool]]:
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


def failing(checks: list[tuple[str, str, Any, str, bool]]) -> list[str]:
    """The keys that fail the run: every floor missed (by the run's slack)."""
    return [key for key, _, _, _, passed in checks if not passed]


def machine() -> dict[str, Any]:
    try:
        version = _docker().version()["Version"]
    except Exception as error:  # the table still says which figures exist
        version = f"unknown ({error})"
    return {"cores": os.cpu_count(), "engine": version, "python": sys.version.split()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="The CI run: a few minutes.")
    parser.add_argument("--json", type=Path, help="Write the figures here too.")
    parser.add_argument("--only", nargs="*", help="Just these benchmarks.")
    options = parser.parse_args()
    suite = QUICK if options.quick else FULL
    chosen = {name: run for name, run in suite.items() if not options.only or name in options.only}
    results: dict[str, Any] = {"machine": machine(), "quick": options.quick}
    took: dict[str, float] = {}
    for name, run in chosen.items():
        started = time.perf_counter()
        print(f"... {name}", file=sys.stderr, flush=True)
        results[name] = run()
        took[name] = round(time.perf_counter() - started, 1)
    results["seconds"] = took
    flat = flatten({k: v for k, v in results.items() if k not in ("machine", "seconds", "quick")})
    facts = results["machine"]
    print(
        f"\n{'Quick' if options.quick else 'Full'} run, {facts['cores']} cores, engine "
        f"{facts['engine']}, Python {facts['python']}\n"
    )
    print("| figure | value |\n|---|---|")
    for key, value in flat.items():
        print(f"| `{key}` | {value} |")
    checks = verdicts(flat, 2.0 if options.quick else 1.0)
    print("\n| floor | figure | value | allowed | |\n|---|---|---|---|---|")
    for key, what, value, shown, passed in checks:
        verdict = "ok" if passed else "MISSED"
        print(f"| {what} | `{key}` | {value} | {shown} | {verdict} |")
    if options.json:
        options.json.write_text(json.dumps(results, indent=2) + "\n")
    missed = failing(checks)
    if missed:
        slack = " by more than 2x" if options.quick else ""
        print(f"\nfloors missed{slack}: {', '.join(missed)}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()

"""Sustained load: `jobs` jobs every `every` seconds, all due in the same second, for
`seconds`; the start lateness of every fire (from its due time to its container
running), ours against a raw loop doing the same work with the same concurrency, in
alternating rounds of the same run.

The raw loop is a scheduler with nothing else to do: at each due time it queues the
fires, as many threads as the service has launch slots take them earliest first and
create and start each container, and one thread per started container waits for it,
reads its logs and removes it (what the service's launch pool and followers do, without
the database, the image check or the live log stream).

    .venv/bin/python -m benchmarks --only sustained
"""

from __future__ import annotations

import contextlib
import heapq
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

IMAGE = os.environ.get("ORCHESTRATOR_JOB_IMAGE", "local/busybox:latest")
LABEL = "orchestrator.bench"


def _next_due(every: float, after: float) -> float:
    """The first multiple of `every` seconds of the epoch after `after` (what `@every`
    does in the service: fires on the wall clock's multiples)."""
    return (int(after // every) + 1) * every


def raw_loop(client: Any, jobs: int, every: float, seconds: float, workers: int) -> list[float]:
    """Lateness (seconds) of every fire due in `seconds`, in the raw loop."""
    queue: list[tuple[float, int]] = []
    ready = threading.Condition()
    lateness: list[float] = []
    followers: list[threading.Thread] = []
    began = time.time()
    first = _next_due(every, began)
    dues = [first + every * k for k in range(int(seconds // every) + 1) if k * every < seconds]
    closed = False

    def follow(container_id: str) -> None:
        client.api.wait(container_id)
        client.api.logs(container_id, stdout=True, stderr=True, timestamps=True)
        client.api.remove_container(container_id, force=True)

    def work() -> None:
        while True:
            with ready:
                while not queue and not closed:
                    ready.wait()
                if not queue:
                    return
                due, _ = heapq.heappop(queue)
            created = client.api.create_container(IMAGE, ["true"], labels={LABEL: "sustained"})
            client.api.start(created["Id"])
            started = time.time()
            with ready:
                lateness.append(started - due)
            thread = threading.Thread(target=follow, args=(created["Id"],))
            thread.start()
            followers.append(thread)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for due in dues:
        time.sleep(max(due - time.time(), 0))
        with ready:
            for index in range(jobs):
                heapq.heappush(queue, (due, index))
            ready.notify_all()
    with ready:
        closed = True
        ready.notify_all()
    for thread in threads:
        thread.join()
    for thread in followers:
        thread.join()
    return lateness


def ours_loop(jobs: int, every: float, seconds: float) -> dict[str, Any]:
    """The service (SQLite, default settings) on `jobs` jobs `@every {every}s`; lateness
    of every fire due from its readiness until `seconds` later, from the history (a fire
    with no run, or a run never started, counts as missing)."""
    from orchestrator.store.database import Database
    from orchestrator.store.facade import Store

    with tempfile.TemporaryDirectory() as scratch:
        env = {
            **os.environ,
            "ORCHESTRATOR_DATABASE_URL": f"sqlite:///{scratch}/bench.db",
            "ORCHESTRATOR_CONTAINER_LABELS": f"{LABEL}=sustained",
            "ORCHESTRATOR_HEALTH_FILE": f"{scratch}/health.json",
        }
        definitions = Path(scratch) / "jobs.yaml"
        definitions.write_text(
            "".join(
                f'- {{name: load-{i:02d}, schedule: "@every {every:g}s", image: "{IMAGE}", '
                'command: ["true"], concurrency: allow, catchup: none}\n'
                for i in range(jobs)
            )
        )
        subprocess.run(
            [sys.executable, "-m", "orchestrator", "db", "upgrade"],
            env=env,
            cwd=scratch,
            check=True,
            capture_output=True,
        )
        service = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "serve", "--jobs", str(definitions)],
            env=env,
            cwd=scratch,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            health = Path(scratch) / "health.json"
            deadline = time.monotonic() + 60
            while not health.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            first = _next_due(every, time.time())
            dues = [first + every * k for k in range(int(seconds // every) + 1)]
            dues = [due for due in dues if due - first < seconds]
            time.sleep(max(dues[-1] - time.time(), 0))
            # Let the window's last fires start (the backlog drains), then stop. Counted
            # with one light query: reading every run through the store twice a second
            # took CPU from the service and the engine that the raw loop's drain has.
            drain_deadline = time.monotonic() + 300
            while time.monotonic() < drain_deadline:
                if _started(Path(scratch) / "bench.db", dues[0], dues[-1]) >= jobs * len(dues):
                    break
                time.sleep(0.5)
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(120)
        database = Database(env["ORCHESTRATOR_DATABASE_URL"])
        wanted = {datetime.fromtimestamp(due, UTC) for due in dues}
        runs = [r for r in Store(database).runs(limit=None) if r.scheduled_for in wanted]
        database.dispose()
    started = [r for r in runs if r.started_at is not None]
    return {
        "lateness": [(r.started_at - r.scheduled_for).total_seconds() for r in started],  # type: ignore[operator]
        # Where it goes: from the due time to the run's insert (the claim), and from
        # the insert to the container running (the launch pool's queue and the launch).
        "claim": [(r.created_at - r.scheduled_for).total_seconds() for r in started],
        "missing": jobs * len(dues) - len(started),
    }


def _started(path: Path, first: float, last: float) -> int:
    """How many runs due from `first` to `last` (epoch seconds) have started."""

    def stored(epoch: float) -> str:  # as the store keeps UTC times in SQLite
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    with contextlib.closing(sqlite3.connect(path, timeout=30)) as connection:
        (count,) = connection.execute(
            "SELECT COUNT(*) FROM runs WHERE started_at IS NOT NULL"
            " AND scheduled_for >= ? AND scheduled_for <= ?",
            (stored(first), stored(last)),
        ).fetchone()
    return int(count)


def _quantiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    p90 = ordered[min(int(len(ordered) * 0.9), len(ordered) - 1)]
    return statistics.median(ordered), p90, ordered[-1]


def sustained(jobs: int, every: float, seconds: float, rounds: int) -> dict[str, Any]:
    """`rounds` rounds of raw then ours; medians and p90s over all fires of each side."""
    import docker

    from orchestrator.settings import DEFAULT_MAX_PARALLEL_LAUNCHES

    client = docker.from_env(timeout=120, max_pool_size=64)
    raw: list[float] = []
    mine: list[float] = []
    claims: list[float] = []
    missing = 0
    per_round = []
    for _ in range(rounds):
        raw_round = raw_loop(client, jobs, every, seconds, DEFAULT_MAX_PARALLEL_LAUNCHES)
        ours_round = ours_loop(jobs, every, seconds)
        raw += raw_round
        mine += ours_round["lateness"]
        claims += ours_round["claim"]
        missing += ours_round["missing"]
        per_round.append(
            {
                "raw_median_s": round(statistics.median(raw_round), 2),
                "ours_median_s": round(statistics.median(ours_round["lateness"]), 2),
            }
        )
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        container.remove(force=True)
    client.close()
    ours_median, ours_p90, ours_max = _quantiles(mine)
    raw_median, raw_p90, raw_max = _quantiles(raw)
    return {
        "jobs": jobs,
        "every_s": every,
        "seconds": seconds,
        "rounds": rounds,
        "launches": DEFAULT_MAX_PARALLEL_LAUNCHES,
        "fires": len(mine) + missing,
        "missing_fires": missing,
        "ours_median_s": round(ours_median, 2),
        "ours_p90_s": round(ours_p90, 2),
        "ours_max_s": round(ours_max, 2),
        "ours_claim_median_s": round(statistics.median(claims), 3),
        "ours_claim_max_s": round(max(claims), 3),
        "raw_median_s": round(raw_median, 2),
        "raw_p90_s": round(raw_p90, 2),
        "raw_max_s": round(raw_max, 2),
        "p90_ratio": round(ours_p90 / raw_p90, 3),
        # The figure the floor is on: the worse of the median's and the p90's ratios.
        "lateness_ratio": round(max(ours_median / raw_median, ours_p90 / raw_p90), 3),
        "per_round": per_round,
    }

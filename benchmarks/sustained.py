"""Sustained load: `jobs` jobs every `every` seconds, all due in the same second, for
`seconds`; the start lateness of every fire (from its due time to its container
running), ours against the raw loop (benchmarks/raw.py: the same work with the same
concurrency), in alternating rounds of the same run.

    .venv/bin/python -m benchmarks --only sustained
    .venv/bin/python -m benchmarks.sustained [JOBS] [EVERY] [SECONDS] [ROUNDS]
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import raw, wiring
from benchmarks.harness import every_jobs, next_due, orchestrator, scratch_env, serving


def ours_loop(jobs: int, every: float, seconds: float) -> dict[str, Any]:
    """The service (SQLite, default settings) on `jobs` jobs `@every {every}s`; lateness
    of every fire due from its readiness until `seconds` later, from the history (a fire
    with no run, or a run never started, counts as missing)."""
    with tempfile.TemporaryDirectory() as scratch:
        env = scratch_env(scratch, "sustained")
        definitions = Path(scratch) / "jobs.yaml"
        definitions.write_text(every_jobs("load", jobs, every))
        orchestrator(env, scratch, "db", "upgrade")
        with serving(env, scratch, "--jobs", str(definitions), stop_s=120):
            first = next_due(every, time.time())
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
        wanted = {datetime.fromtimestamp(due, UTC) for due in dues}
        with wiring.store_at(env["ORCHESTRATOR_DATABASE_URL"]) as store:
            runs = [r for r in store.runs(limit=None) if r.scheduled_for in wanted]
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
    from orchestrator.settings import DEFAULT_MAX_PARALLEL_LAUNCHES

    engine = raw.client()
    theirs: list[float] = []
    mine: list[float] = []
    claims: list[float] = []
    missing = 0
    per_round = []
    for _ in range(rounds):
        raw_round = raw.sustained(engine, jobs, every, seconds, DEFAULT_MAX_PARALLEL_LAUNCHES)
        ours_round = ours_loop(jobs, every, seconds)
        theirs += raw_round
        mine += ours_round["lateness"]
        claims += ours_round["claim"]
        missing += ours_round["missing"]
        per_round.append(
            {
                "raw_median_s": round(statistics.median(raw_round), 2),
                "ours_median_s": round(statistics.median(ours_round["lateness"]), 2),
            }
        )
    raw.remove_ours(engine)
    engine.close()
    ours_median, ours_p90, ours_max = _quantiles(mine)
    raw_median, raw_p90, raw_max = _quantiles(theirs)
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


def run(quick: bool) -> dict[str, Any]:
    return sustained(20, 5, 30, 1) if quick else sustained(20, 5, 120, 3)


def main() -> None:
    given = [int(arg) for arg in sys.argv[1:5]]
    jobs, every, seconds, rounds = given + [20, 5, 120, 3][len(given) :]
    print(json.dumps(sustained(jobs, every, seconds, rounds), indent=2))


if __name__ == "__main__":
    main()

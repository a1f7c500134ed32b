"""Burst: `size` jobs due in the same second, every BURST_EVERY seconds for `seconds`; per
burst, the time from the fire to the last of its containers running, against raw bursts of
`size` create+start with the service's concurrency, before and after ours in the same run.

    .venv/bin/python -m benchmarks.burst [--size 50] [--seconds 120] [--raw-bursts 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import raw, wiring
from benchmarks.harness import every_jobs, next_due, orchestrator, scratch_env, serving

# Bursts come this far apart: a burst of 50 drains in about 15 s on 2 cores, so each
# meets an idle service, as each raw burst meets an idle engine.
BURST_EVERY = 30


def burst(size: int, seconds: float, raw_bursts: int) -> dict[str, Any]:
    """Every burst counted (one that did not complete by the end counts as never: the
    median can be infinite); missing fires over the whole window, from the first due
    fire to the stop."""
    from orchestrator.records import RunStatus

    engine = raw.client()
    with tempfile.TemporaryDirectory() as scratch:
        env = scratch_env(scratch, "burst")
        jobs = Path(scratch) / "jobs.yaml"
        jobs.write_text(every_jobs("burst", size, BURST_EVERY))
        theirs = [raw.burst(engine, size) for _ in range(raw_bursts)]
        orchestrator(env, scratch, "db", "upgrade")
        with wiring.store_at(env["ORCHESTRATOR_DATABASE_URL"]) as store:
            with serving(env, scratch, "--jobs", str(jobs)):
                # The window: from the first due time after the service is ready, `seconds`.
                first = next_due(BURST_EVERY, time.time())
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
            runs = [r for r in store.runs(limit=None) if r.scheduled_for in due_times]
        theirs += [raw.burst(engine, size) for _ in range(raw_bursts)]
    raw.remove_ours(engine)
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
    raw_median = statistics.median(theirs)
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
        "raw_each_ms": [round(b * 1000, 1) for b in theirs],
        "ratio": round(ours / raw_median, 3),
    }


def run(quick: bool) -> dict[str, Any]:
    return burst(50, 30, 1) if quick else burst(50, 120, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--raw-bursts", type=int, default=3)
    options = parser.parse_args()
    print(json.dumps(burst(options.size, options.seconds, options.raw_bursts), indent=2))


if __name__ == "__main__":
    main()

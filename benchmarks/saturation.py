"""Throughput at saturation: runs started per second by the service with a backlog,
against the raw engine's sustained rate for the same work (create, start, wait, logs,
remove) at the best concurrency for this host, measured before and after ours.

Only in the full run (`run(quick=True)` is a shorter one, for running it alone).

    .venv/bin/python -m benchmarks --only saturation
    .venv/bin/python -m benchmarks.saturation [--quick]
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import tempfile
import time
from typing import Any

from benchmarks import raw, wiring
from benchmarks.harness import IMAGE, scratch_env, serving


def ours(runs: int, launches: int) -> dict[str, float]:
    """The service started on a backlog of `runs` queued runs: its rate of starts once
    under way (the first and last tenth left out), and how long it took to drain."""
    from datetime import UTC, datetime, timedelta

    from orchestrator.records import NewRun, RunTrigger
    from orchestrator.spec import LoadedJob, parse_job

    with tempfile.TemporaryDirectory() as scratch:
        env = scratch_env(scratch, "saturation", max_parallel_launches=str(launches))
        with wiring.store_at(env["ORCHESTRATOR_DATABASE_URL"], upgrade=True) as store:
            spec = parse_job(
                {
                    "name": "saturate",
                    "schedule": "@yearly",
                    "image": IMAGE,
                    "command": ["true"],
                    "concurrency": "allow",
                }
            )
            store.apply_jobs([LoadedJob(spec, "bench")])
            now = datetime.now(UTC)
            for index in range(runs):  # one fire each, due now, in order
                store.record_run(
                    NewRun(
                        job="saturate",
                        scheduled_for=now + timedelta(microseconds=index),
                        trigger=RunTrigger.MANUAL,
                        image=IMAGE,
                    )
                )
            began = time.monotonic()
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            with serving(env, scratch, ready_s=0):
                deadline = time.monotonic() + 600
                while time.monotonic() < deadline:
                    finished = [run for run in store.runs(limit=None) if run.status.finished]
                    if len(finished) == runs:
                        break
                    time.sleep(0.5)
                drained = time.monotonic() - began
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
            starts = sorted(run.started_at for run in store.runs(limit=None) if run.started_at)
    tenth = max(len(starts) // 10, 1)
    middle = starts[tenth:-tenth]
    span = (middle[-1] - middle[0]).total_seconds()
    # The service's CPU (its start-up included, about 1.6 s) per run.
    return {"rate": (len(middle) - 1) / span, "drain_s": drained, "cpu_ms": cpu * 1000 / runs}


def saturation(runs: int, seconds: float) -> dict[str, Any]:
    """Ours against the raw engine's best (a sweep of concurrencies before, the best one
    again after ours)."""
    from orchestrator.settings import DEFAULT_MAX_PARALLEL_LAUNCHES

    engine = raw.client()
    sweep = {c: raw.saturated(engine, c, seconds)[0] for c in (1, 2, 4, 8)}
    best = max(sweep, key=lambda c: sweep[c])
    measured = ours(runs, DEFAULT_MAX_PARALLEL_LAUNCHES)
    after, raw_cpu_ms = raw.saturated(engine, best, seconds)
    raw.remove_ours(engine)
    theirs = statistics.mean([sweep[best], after])
    return {
        "runs": runs,
        "launches": DEFAULT_MAX_PARALLEL_LAUNCHES,
        "ours_per_s": round(measured["rate"], 2),
        "drain_s": round(measured["drain_s"], 1),
        "raw_per_s": round(theirs, 2),
        "raw_best_concurrency": best,
        "raw_sweep_per_s": {str(c): round(rate, 2) for c, rate in sweep.items()},
        "ratio": round(measured["rate"] / theirs, 3),
        # CPU per run, ours (the whole service process) beside the raw loop's (its docker
        # SDK calls): on a host whose engine is short of CPU, what ours spends beyond the
        # raw loop is taken from the engine's starts.
        "ours_cpu_ms_per_run": round(measured["cpu_ms"], 1),
        "raw_cpu_ms_per_run": round(raw_cpu_ms, 1),
    }


def run(quick: bool) -> dict[str, Any]:
    return saturation(100, 10) if quick else saturation(300, 20)


def main() -> None:
    print(json.dumps(run("--quick" in sys.argv[1:]), indent=2))


if __name__ == "__main__":
    main()

"""Dispatch: from the user's call (the run's insert included) to its container running,
against raw SDK create+start of the same image and command, interleaved in the same run
so that both see the same engine. Medians of `samples`.

    .venv/bin/python -m benchmarks.dispatch [--samples 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from typing import Any

from benchmarks import raw, wiring
from benchmarks.harness import IMAGE


def dispatch(samples: int) -> dict[str, Any]:
    from orchestrator.records import RunTrigger
    from orchestrator.spec import parse_job

    engine = raw.client()
    spec = parse_job({"name": "bench", "schedule": "@daily", "image": IMAGE, "command": ["true"]})
    with (
        tempfile.TemporaryDirectory() as scratch,
        wiring.store_at(f"sqlite:///{scratch}/bench.db", upgrade=True) as store,
        wiring.launcher(store, "dispatch") as launcher,
    ):

        def ours() -> float:
            marks: dict[str, float] = {}

            def running(_: object) -> None:
                marks.setdefault("at", time.perf_counter())

            started = time.perf_counter()
            launcher.execute(launcher.queue(spec, RunTrigger.MANUAL), spec, on_running=running)
            return marks["at"] - started

        for _ in range(2):  # warm both paths
            ours()
            raw.launch(engine, "dispatch")
        mine, theirs = [], []
        for _ in range(samples):
            theirs.append(raw.launch(engine, "dispatch"))
            mine.append(ours())
    raw.remove_ours(engine)
    ours_ms, raw_ms = statistics.median(mine) * 1000, statistics.median(theirs) * 1000
    return {
        "samples": samples,
        "ours_ms": round(ours_ms, 1),
        "raw_ms": round(raw_ms, 1),
        "ratio": round(ours_ms / raw_ms, 3),
    }


def run(quick: bool) -> dict[str, Any]:
    return dispatch(8 if quick else 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    print(json.dumps(dispatch(parser.parse_args().samples), indent=2))


if __name__ == "__main__":
    main()

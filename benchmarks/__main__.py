"""Every benchmark, each figure beside the raw figure measured in the same run.

    .venv/bin/python -m benchmarks [--quick] [--json PATH] [--only NAME ...]

Prints a Markdown table (with the machine's cores and the engine's version) and, with
--json, writes the figures under stable keys (`dispatch.ratio`, `burst.ratio`,
`burst.missing_fires`, `output.rate_ratio`, `output.rss_growth_mb`, `cli.help_ratio`,
`cli.list_1000_s`, `history.sqlite.by_job_ms`, `viewers.healthz.max_ms`,
`saturation.ratio`, ...). `--quick` (a few minutes) is what CI runs: it fails (exit 1)
only where a figure misses its floor by far (twice the allowed ratio or time, or any
missing fire), so that noise cannot fail a build; the full run's table goes to
benchmarks/RESULTS.md by hand, with its date and machine.

Each benchmark is a module with `run(quick) -> dict`; the floors and the table are in
benchmarks/harness.py, the raw side of every figure in benchmarks/raw.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import (
    burst,
    cli,
    dispatch,
    history,
    output,
    retention,
    saturation,
    sustained,
    viewers,
)
from benchmarks import idle as scale
from benchmarks.harness import failing, machine, report

# (name, the benchmark, in the quick run too): the order of the table and of the JSON.
SUITE: list[tuple[str, Callable[[bool], dict[str, Any]], bool]] = [
    ("dispatch", dispatch.run, True),
    ("burst", burst.run, True),
    ("sustained", sustained.run, True),
    ("output", output.run, True),
    ("cli", cli.run, True),
    ("history", history.run, True),
    ("retention", retention.run, True),
    ("viewers", viewers.run, True),
    ("scale", scale.run, True),  # quick: 1,000 jobs, 10 s idle
    ("saturation", saturation.run, False),  # minutes of backlog: the full run only
]


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="The CI run: a few minutes.")
    parser.add_argument("--json", type=Path, help="Write the figures here too.")
    parser.add_argument("--only", nargs="*", help="Just these benchmarks.")
    options = parser.parse_args()
    chosen = [
        (name, run)
        for name, run, quick_too in SUITE
        if (quick_too or not options.quick) and (not options.only or name in options.only)
    ]
    results: dict[str, Any] = {"machine": machine(), "quick": options.quick}
    took: dict[str, float] = {}
    for name, run in chosen:
        started = time.perf_counter()
        print(f"... {name}", file=sys.stderr, flush=True)
        results[name] = run(options.quick)
        took[name] = round(time.perf_counter() - started, 1)
    results["seconds"] = took
    checks = report(results, options.quick)
    if options.json:
        options.json.write_text(json.dumps(results, indent=2) + "\n")
    missed = failing(checks)
    if missed:
        slack = " by more than 2x" if options.quick else ""
        print(f"\nfloors missed{slack}: {', '.join(missed)}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()

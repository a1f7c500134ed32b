"""Where a run's CPU goes under a load the engine cannot keep up with: the whole host's
busy CPU (`/proc/stat`) per run, split into ours (the service, start-up and `db upgrade`
included; or the raw loop's own process) and everything else (dockerd, containerd, the
shims, the containers, the kernel), in alternating rounds of the sustained load.

Not in the suite (it measures no floor): the figures behind the overload paragraph of
benchmarks/RESULTS.md.

    .venv/bin/python -m benchmarks.engine_cpu [JOBS] [SECONDS] [ROUNDS]
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks import raw
from benchmarks.sustained import ours_loop

EVERY_S = 5.0


def _busy_s() -> float:
    """The host's CPU seconds spent on anything but idle and I/O wait, since boot."""
    with open("/proc/stat") as stat:
        ticks = [int(field) for field in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _measured(side: str, ours_is_child: bool, run: Callable[[], int]) -> dict[str, Any]:
    busy, mine, children = _busy_s(), _cpu_s(resource.RUSAGE_SELF), _cpu_s(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    runs = run()
    busy = _busy_s() - busy
    mine = _cpu_s(resource.RUSAGE_SELF) - mine
    children = _cpu_s(resource.RUSAGE_CHILDREN) - children
    own = children if ours_is_child else mine
    rest = busy - mine - children
    return {
        "side": side,
        "runs": runs,
        "wall_s": time.monotonic() - began,
        "own_ms_per_run": own / runs * 1000,
        "rest_ms_per_run": rest / runs * 1000,
    }


def rounds(jobs: int, seconds: float, count: int) -> Iterator[dict[str, Any]]:
    """Each side's figures, raw then ours, `count` times (as each is measured)."""
    from orchestrator.settings import DEFAULT_MAX_PARALLEL_LAUNCHES

    engine = raw.client()
    try:
        for _ in range(count):
            yield _measured(
                "raw",
                False,
                lambda: len(
                    raw.sustained(engine, jobs, EVERY_S, seconds, DEFAULT_MAX_PARALLEL_LAUNCHES)
                ),
            )
            yield _measured(
                "ours", True, lambda: len(ours_loop(jobs, EVERY_S, seconds)["lateness"])
            )
    finally:
        engine.close()


def run(quick: bool) -> dict[str, Any]:
    return {"rows": list(rounds(20, 30, 1) if quick else rounds(40, 60, 2))}


def main() -> None:
    given = [int(arg) for arg in sys.argv[1:4]]
    jobs, seconds, count = given + [40, 60, 2][len(given) :]
    print("| side | runs | wall | ours (or the raw loop's process) a run | everything else a run |")
    print("|---|---|---|---|---|")
    for row in rounds(jobs, seconds, count):
        print(
            f"| {row['side']} | {row['runs']} | {row['wall_s']:.1f} s | "
            f"{row['own_ms_per_run']:.1f} ms | {row['rest_ms_per_run']:.1f} ms |",
            flush=True,
        )


if __name__ == "__main__":
    main()

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
from collections.abc import Callable

import docker

from benchmarks.sustained import ours_loop, raw_loop
from orchestrator.settings import DEFAULT_MAX_PARALLEL_LAUNCHES

EVERY_S = 5.0


def _busy_s() -> float:
    """The host's CPU seconds spent on anything but idle and I/O wait, since boot."""
    with open("/proc/stat") as stat:
        ticks = [int(field) for field in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _measured(side: str, ours_is_child: bool, run: Callable[[], int]) -> str:
    busy, mine, children = _busy_s(), _cpu_s(resource.RUSAGE_SELF), _cpu_s(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    runs = run()
    busy = _busy_s() - busy
    mine = _cpu_s(resource.RUSAGE_SELF) - mine
    children = _cpu_s(resource.RUSAGE_CHILDREN) - children
    own = children if ours_is_child else mine
    rest = busy - mine - children
    return (
        f"| {side} | {runs} | {time.monotonic() - began:.1f} s | "
        f"{own / runs * 1000:.1f} ms | {rest / runs * 1000:.1f} ms |"
    )


def main() -> None:
    given = [int(arg) for arg in sys.argv[1:4]]
    jobs, seconds, rounds = given + [40, 60, 2][len(given) :]
    client = docker.from_env(timeout=120, max_pool_size=64)
    print("| side | runs | wall | ours (or the raw loop's process) a run | everything else a run |")
    print("|---|---|---|---|---|")
    for _ in range(rounds):
        print(
            _measured(
                "raw",
                False,
                lambda: len(
                    raw_loop(client, jobs, EVERY_S, seconds, DEFAULT_MAX_PARALLEL_LAUNCHES)
                ),
            ),
            flush=True,
        )
        print(
            _measured("ours", True, lambda: len(ours_loop(jobs, EVERY_S, seconds)["lateness"])),
            flush=True,
        )
    client.close()


if __name__ == "__main__":
    main()

"""Idle (`scale.*`): `count` enabled job definitions (daily, spread over the day): the
service's start-up time (process start to scheduling, `--http` off) beside APScheduler
alone adding the same triggers in a process of its own (`startup_ratio`), then the
service's CPU and resident memory while idle over `seconds`. The quick run uses 1,000
jobs and 10 s.

    .venv/bin/python -m benchmarks.idle [--jobs 10000] [--idle-seconds 30]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import IMAGE, orchestrator, scratch_env, serving


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# APScheduler alone: a process that adds `count` cron triggers and starts, timed as ours.
_RAW = """
import sys
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
s = BackgroundScheduler(timezone="UTC")
for i in range(int(sys.argv[1])):
    s.add_job(print, CronTrigger(minute=i % 60, hour=i % 24, timezone="UTC"), id=f"idle-{i:05d}")
s.start()
s.shutdown(wait=False)
"""


def apscheduler_alone(count: int) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", _RAW, str(count)], check=True)
    return time.perf_counter() - started


def idle(count: int, seconds: float) -> dict[str, Any]:
    raw = apscheduler_alone(count)
    with tempfile.TemporaryDirectory() as scratch:
        env = scratch_env(scratch)
        jobs = Path(scratch) / "jobs.yaml"
        jobs.write_text(
            "".join(
                f'- {{name: idle-{i:05d}, schedule: "{i % 60} {i % 24} * * *", image: "{IMAGE}"}}\n'
                for i in range(count)
            )
        )
        orchestrator(env, scratch, "db", "upgrade")
        orchestrator(env, scratch, "jobs", "apply", str(jobs))
        started = time.perf_counter()
        # No --http: the service alone (the API is off unless asked for).
        with serving(env, scratch, "--log-level", "warning", ready_s=600, quiet=False) as service:
            startup = time.perf_counter() - started
            time.sleep(5)
            before = _cpu_seconds(service.pid)
            time.sleep(seconds)
            used = _cpu_seconds(service.pid) - before
            memory = _rss_mb(service.pid)
    return {
        "jobs": count,
        "startup_s": round(startup, 2),
        "apscheduler_startup_s": round(raw, 2),
        "startup_ratio": round(startup / raw, 2),
        "seconds": seconds,
        "idle_cpu_pct": round(100 * used / seconds, 2),
        "rss_mb": round(memory, 1),
    }


def run(quick: bool) -> dict[str, Any]:
    return idle(1000, 10) if quick else idle(10_000, 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--idle-seconds", type=float, default=30)
    options = parser.parse_args()
    figures = idle(options.jobs, options.idle_seconds)
    print(
        f"idle: {figures['jobs']} enabled jobs: start-up {figures['startup_s']:.1f} s (process "
        f"start to scheduling; APScheduler alone {figures['apscheduler_startup_s']:.1f} s), "
        f"idle CPU {figures['idle_cpu_pct']:.2f} % of a core over "
        f"{figures['seconds']:.0f} s, resident memory {figures['rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()

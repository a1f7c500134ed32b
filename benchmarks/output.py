"""Output: a job writing `megabytes` MB of short lines, captured by `jobs run` (less a
silent job's run, so the CLI's and the container's fixed costs cancel): the rate against
`docker logs --follow` of the same command started raw; peak RSS (the kernel's high water
mark through the run) against the silent job's.

    .venv/bin/python -m benchmarks.output [--megabytes 100]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import raw
from benchmarks.harness import IMAGE, orchestrator, scratch_env

# Runs its arguments, then prints the peak RSS (KiB) of the process they started.
PEAK = (
    "import resource, subprocess, sys\n"
    "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)
ORCHESTRATOR = [sys.executable, "-m", "orchestrator"]


def output(megabytes: int) -> dict[str, Any]:
    engine = raw.client()
    size = megabytes * 1000 * 1000
    command = "yes 0123456789012345678901234567890123456789 | head -c " + str(size)
    with tempfile.TemporaryDirectory() as scratch:
        env = scratch_env(scratch, "output", keep_containers="true")
        (Path(scratch) / "jobs.yaml").write_text(
            f'- {{name: quiet, schedule: "@daily", image: "{IMAGE}", command: ["true"]}}\n'
            f'- {{name: loud, schedule: "@daily", image: "{IMAGE}", command: ["sh", "-c", '
            f'"{command}"]}}\n'
        )
        orchestrator(env, scratch, "db", "upgrade")
        orchestrator(env, scratch, "jobs", "apply", f"{scratch}/jobs.yaml")

        def peak(job: str) -> tuple[float, float]:
            started = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", PEAK, *ORCHESTRATOR, "jobs", "run", job],
                env=env,
                cwd=scratch,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            return int(out.strip()) / 1024, time.perf_counter() - started

        quiet_mb, quiet_s = peak("quiet")
        loud_mb, loud_s = peak("loud")
        shown = json.loads(orchestrator(env, scratch, "runs", "show", "2", "--json"))
        raw_s = raw.followed_logs(command)
    raw.remove_ours(engine)
    ours_s = max(loud_s - quiet_s, 0.001)  # the capture, less a silent run's fixed cost
    return {
        "megabytes": megabytes,
        "ours_mb_s": round(megabytes / ours_s, 2),
        "raw_mb_s": round(megabytes / raw_s, 2),
        "rate_ratio": round(raw_s / ours_s, 3),
        "rss_quiet_mb": round(quiet_mb, 1),
        "rss_loud_mb": round(loud_mb, 1),
        "rss_growth_mb": round(loud_mb - quiet_mb, 1),
        "status": shown["status"],
    }


def run(quick: bool) -> dict[str, Any]:
    return output(20 if quick else 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=100)
    print(json.dumps(output(parser.parse_args().megabytes), indent=2))


if __name__ == "__main__":
    main()

"""Benchmark: launch overhead against the raw engine, and memory while capturing output.

1. Launch overhead: the time from `RunLauncher.execute` (a queued run is dispatched) to
   the container running, against raw docker SDK create+start of the same image and
   command, interleaved in the same run so that both see the same engine. Median of N.
2. Memory: peak resident memory of `orchestrator jobs run` for a job writing 100 MB of
   output, against the same command for a job writing nothing.

    .venv/bin/python benchmarks/bench_launch.py [--samples 30] [--output-mb 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker

from orchestrator.engine import DockerEngine
from orchestrator.launcher import LaunchSettings, RunLauncher
from orchestrator.records import RunTrigger
from orchestrator.selfcontainer import locate_self
from orchestrator.spec import parse_job
from orchestrator.store import migrations
from orchestrator.store.database import Database

IMAGE = os.environ.get("ORCHESTRATOR_JOB_IMAGE", "local/busybox:latest")
LABEL = {"orchestrator.bench": "launch"}


def raw_create_start(client: docker.DockerClient) -> tuple[float, str]:
    started = time.perf_counter()
    created = client.api.create_container(IMAGE, ["true"], labels=LABEL)
    client.api.start(created["Id"])
    return time.perf_counter() - started, created["Id"]


def orchestrated(launcher: RunLauncher) -> float:
    spec = parse_job({"name": "bench", "schedule": "@daily", "image": IMAGE, "command": ["true"]})
    run = launcher.queue(spec, RunTrigger.MANUAL)
    marks: dict[str, float] = {}
    started = time.perf_counter()
    launcher.execute(
        run, spec, on_running=lambda _: marks.setdefault("running", time.perf_counter())
    )
    return marks["running"] - started


def launch_overhead(samples: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        database = Database(f"sqlite:///{scratch}/bench.db")
        migrations.upgrade(database)
        engine = DockerEngine.from_env()
        launcher = RunLauncher(
            database,
            engine,
            locate_self(engine, None),
            LaunchSettings(extra_labels=tuple(LABEL.items())),
        )
        client = docker.from_env()
        raw: list[float] = []
        ours: list[float] = []
        for _ in range(2):  # warm both paths
            orchestrated(launcher)
            client.api.remove_container(raw_create_start(client)[1], force=True)
        for _ in range(samples):
            seconds, container_id = raw_create_start(client)
            raw.append(seconds)
            client.api.wait(container_id)
            client.api.remove_container(container_id, force=True)
            ours.append(orchestrated(launcher))
        raw_median, our_median = statistics.median(raw), statistics.median(ours)
        print(
            f"launch: raw SDK create+start median {raw_median * 1000:.0f} ms, "
            f"orchestrator dispatch->running median {our_median * 1000:.0f} ms, "
            f"ratio {our_median / raw_median:.2f} ({samples} samples each, interleaved)"
        )
        for container in client.containers.list(all=True, filters={"label": "orchestrator.bench"}):
            container.remove(force=True)
        engine.close()
        database.dispose()


def peak_rss_mb(args: list[str], env: dict[str, str], cwd: str) -> float:
    code = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.strip()) / 1024


def output_memory(megabytes: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            **os.environ,
            "ORCHESTRATOR_DATABASE_URL": f"sqlite:///{scratch}/mem.db",
            "ORCHESTRATOR_CONTAINER_LABELS": "orchestrator.bench=memory",
        }
        jobs = Path(scratch) / "jobs.yaml"
        jobs.write_text(
            f"""
- {{name: quiet, schedule: "@daily", image: "{IMAGE}", command: ["true"]}}
- name: loud
  schedule: "@daily"
  image: "{IMAGE}"
  command: ["sh", "-c", "yes {"0123456789" * 4} | head -c {megabytes * 1000 * 1000}"]
"""
        )
        orchestrator = [sys.executable, "-m", "orchestrator"]
        subprocess.run(
            [*orchestrator, "db", "upgrade"], env=env, cwd=scratch, check=True, capture_output=True
        )
        subprocess.run(
            [*orchestrator, "jobs", "apply", str(jobs)],
            env=env,
            cwd=scratch,
            check=True,
            capture_output=True,
        )
        quiet = peak_rss_mb([*orchestrator, "jobs", "run", "quiet"], env, scratch)
        started = time.perf_counter()
        loud = peak_rss_mb([*orchestrator, "jobs", "run", "loud"], env, scratch)
        seconds = time.perf_counter() - started
        print(
            f"memory: peak RSS {quiet:.0f} MB for a silent job, {loud:.0f} MB for a job "
            f"writing {megabytes} MB ({seconds:.1f} s): growth {loud - quiet:.0f} MB"
        )
        shown = subprocess.run(
            [*orchestrator, "runs", "show", "2", "--json"],
            env=env,
            cwd=scratch,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert '"output_truncated": true' in shown and '"status": "succeeded"' in shown, shown[
            -400:
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--output-mb", type=int, default=100)
    options = parser.parse_args()
    launch_overhead(options.samples)
    output_memory(options.output_mb)


if __name__ == "__main__":
    main()

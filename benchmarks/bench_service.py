"""Benchmark the scheduler service.

burst: 20 jobs every 5 s (all due in the same second) for --minutes: fires missing from
  the history, and the time from scheduled_for until the last container of a burst runs,
  against a raw burst of 20 SDK create+start on 20 threads, measured in the same run.
idle: --jobs enabled job definitions (daily): start-up time, then CPU and resident
  memory of the idle service over --idle-seconds.

    .venv/bin/python benchmarks/bench_service.py burst [--minutes 2]
    .venv/bin/python benchmarks/bench_service.py idle [--jobs 10000]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import docker

from orchestrator.records import RunStatus
from orchestrator.store.database import Database
from orchestrator.store.runs import RunRepository

IMAGE = os.environ.get("ORCHESTRATOR_JOB_IMAGE", "local/busybox:latest")
LABEL = "orchestrator.bench=service"


def orchestrator(env: dict[str, str], cwd: str, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env=env,
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def raw_burst(size: int) -> float:
    """Seconds from the start of a burst until the last of `size` containers runs."""
    clients = [docker.from_env() for _ in range(size)]
    barrier = threading.Barrier(size + 1)
    ids: list[str] = []
    lock = threading.Lock()

    def one(client: docker.DockerClient) -> None:
        barrier.wait()
        created = client.api.create_container(
            IMAGE, ["true"], labels={"orchestrator.bench": "service"}
        )
        client.api.start(created["Id"])
        with lock:
            ids.append(created["Id"])

    threads = [threading.Thread(target=one, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for container_id in ids:
        clients[0].api.remove_container(container_id, force=True)
    for client in clients:
        client.close()
    return elapsed


def burst(minutes: float) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            **os.environ,
            "ORCHESTRATOR_DATABASE_URL": f"sqlite:///{scratch}/bench.db",
            "ORCHESTRATOR_CONTAINER_LABELS": LABEL,
            "ORCHESTRATOR_HEALTH_FILE": f"{scratch}/health.json",
        }
        jobs = Path(scratch) / "jobs.yaml"
        jobs.write_text(
            "".join(
                f'- {{name: burst-{i:02d}, schedule: "@every 5s", image: "{IMAGE}", '
                'command: ["true"], concurrency: allow, catchup: none}\n'
                for i in range(20)
            )
        )
        raw_before = [raw_burst(20) for _ in range(5)]
        orchestrator(env, scratch, "db", "upgrade")
        service = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orchestrator",
                "serve",
                "--jobs",
                str(jobs),
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=scratch,
        )
        time.sleep(minutes * 60)
        service.send_signal(signal.SIGTERM)
        service.wait(60)
        time.sleep(1)
        raw_after = [raw_burst(20) for _ in range(5)]
        database = Database(env["ORCHESTRATOR_DATABASE_URL"])
        with database.session() as session:
            runs = RunRepository(session).list(limit=None)
        by_job: dict[str, list] = defaultdict(list)
        by_fire: dict[object, list] = defaultdict(list)
        for run in runs:
            by_job[run.job].append(run.scheduled_for)
            by_fire[run.scheduled_for].append(run)
        first = min(r.scheduled_for for r in runs)
        last = max(r.scheduled_for for r in runs)
        expected = int((last - first) / timedelta(seconds=5)) + 1
        missing = (
            sum(expected - len(set(times)) for times in by_job.values())
            + (20 - len(by_job)) * expected
        )
        complete = [
            fire
            for fire, members in by_fire.items()
            if len(members) == 20 and all(m.started_at for m in members)
        ]
        latencies = [max(m.started_at for m in by_fire[fire]) - fire for fire in complete]  # type: ignore[operator]
        ours = statistics.median(latency.total_seconds() for latency in latencies)
        raw = statistics.median(raw_before + raw_after)
        failed = sum(r.status is not RunStatus.SUCCEEDED for r in runs if r.status.finished)
        print(
            f"burst: {len(runs)} runs over {expected} fires x 20 jobs, missing fires {missing}, "
            f"not succeeded {failed}"
        )
        print(
            f"burst: scheduled_for -> last container running, median {ours * 1000:.0f} ms over "
            f"{len(complete)} bursts; raw 20 x create+start on 20 threads median "
            f"{raw * 1000:.0f} ms ({len(raw_before) + len(raw_after)} bursts); "
            f"ratio {ours / raw:.2f}"
        )
        for container in docker.from_env().containers.list(all=True, filters={"label": LABEL}):
            container.remove(force=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def idle(count: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        health = Path(scratch) / "health.json"
        env = {
            **os.environ,
            "ORCHESTRATOR_DATABASE_URL": f"sqlite:///{scratch}/idle.db",
            "ORCHESTRATOR_HEALTH_FILE": str(health),
        }
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
        service = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "serve", "--log-level", "warning"],
            env=env,
            cwd=scratch,
        )
        while not health.exists():
            time.sleep(0.05)
        startup = time.perf_counter() - started
        time.sleep(5)
        before = cpu_seconds(service.pid)
        time.sleep(seconds)
        used = cpu_seconds(service.pid) - before
        memory = rss_mb(service.pid)
        service.send_signal(signal.SIGTERM)
        service.wait(60)
        print(
            f"idle: {count} enabled jobs: start-up {startup:.1f} s (process start to scheduling), "
            f"idle CPU {100 * used / seconds:.2f} % of a core over {seconds:.0f} s, "
            f"resident memory {memory:.0f} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["burst", "idle"])
    parser.add_argument("--minutes", type=float, default=2)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--idle-seconds", type=float, default=30)
    options = parser.parse_args()
    if options.what == "burst":
        burst(options.minutes)
    else:
        idle(options.jobs, options.idle_seconds)


if __name__ == "__main__":
    main()

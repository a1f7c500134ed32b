"""Overload on the real engine: 5 jobs every second for 2 minutes on SQLite (the load
that stalled the service before it had a launch pool: 417 threads, 204 containers left
`Created`, runs pending for minutes, 70 lost). The service must keep making progress,
drain its backlog once the load stops, lose nothing, and keep its threads bounded."""

from __future__ import annotations

import itertools
import json
import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.records import RunStatus
from orchestrator.store.database import Database
from tests.acceptance.service.conftest import all_runs, wait_for, write_jobs
from tests.support.engines import TEST_LABEL

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.serial]

JOBS = [f"load-{index}" for index in range(5)]
LOAD_SECONDS = 120
DRAIN_SECONDS = 120
MAX_RUNNING = 20
# launch workers, claim and delivery workers, APScheduler, heartbeats, deadlines, the
# main loop and HTTP-less serve's own: about 20; plus one per run followed.
THREAD_BOUND = 24 + MAX_RUNNING


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError(f"no thread count for process {pid}")


@pytest.mark.timeout(600)  # 2 minutes of load, up to 2 of draining
@pytest.mark.parametrize("empty_database_url", ["sqlite"], indirect=True)
def test_five_jobs_every_second_for_two_minutes_never_stall_and_lose_nothing(
    start_service: Any,
    database: Database,
    tmp_path: Path,
    docker_cli: Any,
    docker_client: Any,
    test_label: dict[str, str],
) -> None:
    jobs = write_jobs(
        tmp_path,
        "".join(
            f'- {{name: {name}, schedule: "@every 1s", image: IMAGE, command: ["true"], '
            "concurrency: allow}\n"
            for name in JOBS
        ),
    )
    service = start_service("--jobs", str(jobs), "--max-running", str(MAX_RUNNING))
    wait_for(lambda: (tmp_path / "health.json").exists(), 30, "the service to start")
    began = time.monotonic()
    peak_threads = 0
    started_by_second: list[int] = []
    backlog_seen = 0
    while time.monotonic() - began < LOAD_SECONDS:
        assert service.process.poll() is None, service.output()[-3000:]
        peak_threads = max(peak_threads, threads_of(service.process.pid))
        runs = all_runs(database)
        started_by_second.append(sum(1 for run in runs if run.started_at is not None))
        try:
            health = json.loads((tmp_path / "health.json").read_text())
            backlog_seen = max(backlog_seen, int(health["launches"]["backlog"]))
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(1)
    for name in JOBS:
        docker_cli("jobs", "disable", name)
    stopped = time.monotonic()

    def drained() -> list[Any] | None:
        runs = all_runs(database)
        return runs if all(run.status.finished for run in runs) else None

    runs = wait_for(drained, DRAIN_SECONDS, "every run to end after the load stopped")
    drain_seconds = time.monotonic() - stopped
    peak_threads = max(peak_threads, threads_of(service.process.pid))

    statuses = {status: sum(1 for run in runs if run.status is status) for status in RunStatus}
    assert statuses[RunStatus.SUCCEEDED] == len(runs), {
        status.value: count for status, count in statuses.items() if count
    }
    # Every fire from the first to the last is there, once: none dropped under load.
    for name in JOBS:
        moments = sorted(run.scheduled_for for run in runs if run.job == name)
        assert len(moments) == len(set(moments))
        span = (moments[-1] - moments[0]).total_seconds()
        assert len(moments) == span + 1, f"{name}: {len(moments)} runs over {span:.0f}s"
    # Never stalled: runs started in every 15 s of the load after the first 15 s.
    windows = started_by_second[15::15]
    assert all(later > earlier for earlier, later in itertools.pairwise(windows))
    assert peak_threads <= THREAD_BOUND, peak_threads
    wait_for(
        lambda: (
            not docker_client.containers.list(
                all=True, filters={"label": f"{TEST_LABEL}={test_label[TEST_LABEL]}"}
            )
        ),
        30,
        "every job container removed",
    )
    late = sorted(
        (run.started_at - run.scheduled_for).total_seconds()
        for run in runs
        if run.started_at is not None
    )
    print(
        f"\noverload: {len(runs)} runs, all succeeded; drained {drain_seconds:.1f}s after the "
        f"load stopped; peak threads {peak_threads} (bound {THREAD_BOUND}); the largest "
        f"backlog {backlog_seen}; lateness median {statistics.median(late):.2f}s, "
        f"p90 {late[int(len(late) * 0.9)]:.2f}s, max {late[-1]:.2f}s"
    )
    assert service.terminate() == 0

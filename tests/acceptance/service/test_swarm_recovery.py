"""Restart recovery on the Swarm backend: `serve` killed (SIGKILL) while its runs' services
run, then started again, ends every run truthfully from the services it finds by label.
On the single-node swarm of tests/support/swarm.py."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.engine import JOB_LABEL
from orchestrator.records import RunStatus
from orchestrator.store.database import Database
from orchestrator.store.runs import RunRepository
from tests.acceptance.service.conftest import all_runs, wait_for, write_jobs

pytestmark = [pytest.mark.docker, pytest.mark.swarm, pytest.mark.slow]


def test_a_killed_scheduler_restarted_ends_each_swarm_run_truthfully(
    start_service: Any,
    database: Database,
    tmp_path: Path,
    docker_cli: Any,
    docker_client: Any,
    swarm_label: dict[str, str],
) -> None:
    """The attack: the scheduler dies (SIGKILL) with three runs' services in flight. One
    runs on past the restart (followed to its end), one ends while no scheduler watches
    (its true exit code and output), and one's service is removed meanwhile (lost, never
    succeeded)."""
    jobs = write_jobs(
        tmp_path,
        """
- {name: long, schedule: "0 0 1 1 *", image: IMAGE,
   command: [sh, -c, "echo start; sleep 12; echo end; exit 3"]}
- {name: quick, schedule: "0 0 1 1 *", image: IMAGE, command: [sh, -c, "sleep 2; echo bye; exit 5"]}
- {name: doomed, schedule: "0 0 1 1 *", image: IMAGE, command: [sh, -c, "sleep 60; exit 0"]}
""",
    )
    docker_cli("jobs", "apply", str(jobs))
    # Label jobs off: other tests' containers on this engine are not this scheduler's.
    env = {"ORCHESTRATOR_BACKEND": "swarm", "ORCHESTRATOR_LABEL_JOBS": "off"}
    first = start_service(env=env)
    ids = {
        name: int(docker_cli("jobs", "run", name, "--detach").stdout.split()[2])
        for name in ("long", "quick", "doomed")
    }
    wait_for(
        lambda: [r.status for r in all_runs(database)] == [RunStatus.RUNNING] * 3,
        60,
        "three runs running",
    )
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    ((key, value),) = swarm_label.items()
    services = docker_client.services.list(filters={"label": f"{key}={value}"})
    assert len(services) == 3  # the dead scheduler's runs go on
    with database.session() as session:
        doomed_service = RunRepository(session).get(ids["doomed"]).container_id
    assert doomed_service in {s.id for s in services}
    docker_client.api.remove_service(doomed_service)

    def quick_ended() -> bool:
        (service,) = [s for s in services if s.attrs["Spec"]["Labels"][JOB_LABEL] == "quick"]
        return any(t["Status"]["State"] == "failed" for t in service.tasks())

    wait_for(quick_ended, 30, "quick's task to end while no scheduler watches")
    second = start_service(env=env)
    wait_for(lambda: all(r.status.finished for r in all_runs(database)), 60, "all three ended")
    assert second.terminate() == 0
    with database.session() as session:
        runs = RunRepository(session)
        long, quick, doomed = (runs.get(ids[n]) for n in ("long", "quick", "doomed"))
    # Followed: the end's output was written after the restart.
    assert (long.status, long.exit_code, long.output) == (RunStatus.FAILED, 3, "start\nend\n")
    assert (quick.status, quick.exit_code, quick.output) == (RunStatus.FAILED, 5, "bye\n")
    assert doomed.status is RunStatus.LOST and "vanished" in (doomed.error or "")
    assert len(all_runs(database)) == 3  # nothing started twice
    deadline = time.monotonic() + 10
    while docker_client.services.list(filters={"label": f"{key}={value}"}):
        assert time.monotonic() < deadline, "services left behind"
        time.sleep(0.2)

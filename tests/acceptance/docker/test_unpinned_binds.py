"""The link race where the scheduler cannot pin (it runs in a container, as composed):
another job, not root, flips a directory it may write for a link to the host's /etc
every few milliseconds while the scheduler starts a job that binds it. The job never
sees /etc; a bind whose parents only root may change still runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.docker.test_in_container import in_scheduler
from tests.support.engines import JOB_IMAGE

pytestmark = [pytest.mark.docker, pytest.mark.slow]
TRIES = 12
# The attacker: a job running as nobody with the shared directory as its volume.
FLIPPER = (
    "cd /shared && mkdir -p ok && echo harmless > ok/MARK && touch /shared/flipping && "
    "while :; do mv ok ok.real; ln -s /etc ok; usleep 3000; rm ok; mv ok.real ok; "
    "usleep 3000; done"
)


def test_a_job_started_while_another_flips_its_source_to_etc_never_sees_etc(
    scheduler_image: str, docker_client: Any, test_label: dict[str, str], tmp_path: Path
) -> None:
    host_data = tmp_path / "scheduler-data"  # root's, 755: the scheduler sees it at /data
    (host_data / "jobs").mkdir(parents=True)
    shared = host_data / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # the flipping job's to write
    (host_data / "safe" / "ok").mkdir(parents=True)
    (host_data / "safe" / "ok" / "MARK").write_text("safe\n")
    (host_data / "jobs" / "jobs.yaml").write_text(
        f"""
- name: racer
  schedule: "@daily"
  image: {JOB_IMAGE}
  volumes: ["/data/shared/ok:/h:ro"]
  command: ["sh", "-c", "if test -e /h/passwd; then echo SAW-ETC; else cat /h/MARK; fi"]
- name: safe
  schedule: "@daily"
  image: {JOB_IMAGE}
  volumes: ["/data/safe/ok:/h:ro"]
  command: ["cat", "/h/MARK"]
"""
    )
    docker_client.containers.run(
        JOB_IMAGE,
        ["sh", "-c", FLIPPER],
        user="65534:65534",
        volumes={str(shared): {"bind": "/shared", "mode": "rw"}},
        labels=test_label,
        detach=True,
    )
    code, output = in_scheduler(
        docker_client,
        scheduler_image,
        test_label,
        host_data,
        "orchestrator db upgrade >/dev/null; orchestrator jobs apply /data/jobs >/dev/null; "
        "until test -e /data/shared/flipping; do sleep 0.1; done; "
        f"for try in $(seq {TRIES}); do orchestrator jobs run racer; echo racer-exit=$?; done; "
        "orchestrator jobs run safe; echo safe-exit=$?",
    )
    assert code == 0, output
    assert "SAW-ETC" not in output, output
    assert output.count("racer-exit=125") == TRIES, output
    assert "racer-exit=0" not in output
    assert "directory /data/shared is writable by its group and others" in output, output
    assert "ORCHESTRATOR_UNPINNED_BINDS=allow" in output
    # root-only parents: mounted, from inside the container, without a pin
    assert "safe\nsafe-exit=0" in output, output

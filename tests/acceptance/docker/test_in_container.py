"""The product's own situation: the CLI runs INSIDE a container with the host's socket and a
bind mount whose host path differs from its container path. The job writes through a
translated volume, and the file appears at the HOST path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.engines import JOB_IMAGE, TEST_LABEL

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]


def in_scheduler(
    docker_client: Any,
    image: str,
    label: dict[str, str],
    host_data: Path,
    script: str,
    volumes: dict[str, dict[str, str]] | None = None,
    environment: dict[str, str] | None = None,
) -> tuple[int, str]:
    ((key, value),) = label.items()
    container = docker_client.containers.run(
        image,
        ["-c", script],
        entrypoint=["sh"],
        volumes={
            "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
            str(host_data): {"bind": "/data", "mode": "rw"},
            **(volumes or {}),
        },
        environment={
            "ORCHESTRATOR_DATABASE_URL": "sqlite:////data/orchestrator.db",
            "ORCHESTRATOR_CONTAINER_LABELS": f"{key}={value}",
            **(environment or {}),
        },
        labels=label,
        detach=True,
    )
    status = container.wait(timeout=300)
    output = container.logs().decode()
    return int(status["StatusCode"]), output


def test_a_job_writes_through_a_translated_volume_to_the_host_path(
    scheduler_image: str, docker_client: Any, test_label: dict[str, str], tmp_path: Path
) -> None:
    host_data = tmp_path / "scheduler-data"  # the host path; the scheduler sees /data
    (host_data / "jobs").mkdir(parents=True)
    (host_data / "out").mkdir()
    (host_data / "jobs" / "writer.yaml").write_text(
        f"""
- name: writer
  schedule: "@daily"
  image: {JOB_IMAGE}
  command: ["sh", "-c", "echo written by run $ORCHESTRATOR_RUN_ID > /out/hello.txt; echo done"]
  volumes: ["/data/out:/out"]
- name: unshareable
  schedule: "@daily"
  image: {JOB_IMAGE}
  volumes: ["/srv/elsewhere:/x"]
"""
    )
    code, output = in_scheduler(
        docker_client,
        scheduler_image,
        test_label,
        host_data,
        "set -e; orchestrator db upgrade; orchestrator jobs apply /data/jobs; "
        "orchestrator jobs run writer; "
        "orchestrator doctor --json > /data/doctor.json; "
        "set +e; orchestrator jobs run unshareable; echo unshareable-exit=$?",
    )
    assert code == 0, output
    assert "done" in output
    # The sibling wrote at the HOST path behind /data/out.
    assert (host_data / "out" / "hello.txt").read_text() == "written by run 1\n"
    assert "bind-mount a host directory into the scheduler at /srv/elsewhere" in output
    assert "unshareable-exit=125" in output

    doctor = json.loads((host_data / "doctor.json").read_text())
    location = doctor["location"]
    assert location["in_container"] is True
    assert location["found_by"] in ("/proc/self/mountinfo", "/proc/self/cgroup")
    data_mount = next(m for m in location["mounts"] if m["destination"] == "/data")
    assert data_mount == {
        "type": "bind",
        "destination": "/data",
        "source": str(host_data),
        "read_only": False,
    }
    # The job ran as a sibling on the host's engine and is gone; the scheduler too.
    ((key, value),) = test_label.items()
    siblings = docker_client.containers.list(
        all=True, filters={"label": ["orchestrator.managed=true", f"{key}={value}"]}
    )
    assert siblings == []
    assert key == TEST_LABEL


def test_the_policy_and_secrets_hold_from_inside_the_scheduler(
    scheduler_image: str, docker_client: Any, test_label: dict[str, str], tmp_path: Path
) -> None:
    host_data = tmp_path / "scheduler-data"
    (host_data / "jobs").mkdir(parents=True)
    (host_data / "secrets").mkdir()
    (host_data / "secrets" / "db").write_text("in-container-s3cret\n")
    (host_data / "escape").symlink_to("/")  # inside the scheduler: /data/escape -> its /
    (host_data / "jobs" / "jobs.yaml").write_text(
        f"""
- name: escape
  schedule: "@daily"
  image: {JOB_IMAGE}
  volumes: ["/data/escape:/x"]
- name: hostrun
  schedule: "@daily"
  image: {JOB_IMAGE}
  volumes: ["/hostrun:/h"]
- name: secretive
  schedule: "@daily"
  image: {JOB_IMAGE}
  secrets: [{{name: db, env: DB_PASSWORD, file: /run/secrets/db}}]
  command: ["sh", "-c", "echo env=$DB_PASSWORD file=$(cat /run/secrets/db)"]
- name: hostnet
  schedule: "@daily"
  image: {JOB_IMAGE}
  network: host
- name: outside
  schedule: "@daily"
  image: {JOB_IMAGE}
  volumes: ["/data/jobs:/j"]
- name: inside
  schedule: "@daily"
  image: {JOB_IMAGE}
  volumes: ["/data/allowed:/a"]
  command: ["ls", "/a"]
- name: socket
  schedule: "@daily"
  image: {JOB_IMAGE}
  docker_socket: true
  command: ["sh", "-c", "test -S /var/run/docker.sock && echo HAS-SOCKET"]
"""
    )
    (host_data / "allowed").mkdir()
    (host_data / "allowed" / "marker").write_text("")
    code, output = in_scheduler(
        docker_client,
        scheduler_image,
        test_label,
        host_data,
        "orchestrator db upgrade >/dev/null; orchestrator jobs apply /data/jobs >/dev/null; "
        "for job in escape hostrun secretive hostnet; do "
        "orchestrator jobs run $job; echo $job-exit=$?; done; "
        # host paths: the allow-list is checked after translation
        f"export ORCHESTRATOR_ALLOWED_HOST_PATHS={host_data}/allowed,{host_data}/secrets; "
        "for job in outside inside; do orchestrator jobs run $job; echo $job-exit=$?; done; "
        "unset ORCHESTRATOR_ALLOWED_HOST_PATHS; "
        "orchestrator jobs run socket; echo socket-refused-exit=$?; "
        "orchestrator jobs run socket --allow-privileged-jobs; echo socket-exit=$?",
        # the host's /var/run (with the socket in it) under another name
        volumes={"/var/run": {"bind": "/hostrun", "mode": "ro"}},
        environment={"ORCHESTRATOR_SECRETS_DIR": "/data/secrets"},
    )
    assert code == 0, output
    assert "leads to /, out of the scheduler's mount" in output, output
    assert "escape-exit=125" in output
    assert "asks for docker_socket (volume /" in output and "hostrun-exit=125" in output
    assert "env=*** file=***\nsecretive-exit=0" in output
    assert "in-container-s3cret" not in output
    assert "asks for host_network" in output and "hostnet-exit=125" in output
    assert f"host path {host_data}/jobs is outside ORCHESTRATOR_ALLOWED_HOST_PATHS" in output
    assert "outside-exit=125" in output
    assert "marker\ninside-exit=0" in output
    assert "socket-refused-exit=125" in output
    # the socket the scheduler reaches the engine by, translated to the host's
    assert "HAS-SOCKET\nsocket-exit=0" in output

"""The real service, told by a job to notify its own host: the webhook (by name, which
resolves to 127.0.0.1) and the ping are refused and recorded so, and the receiver on
loopback gets nothing, until the operator grants the host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.store.database import Database
from orchestrator.store.facade import Store
from tests.acceptance.service.conftest import wait_for, write_jobs
from tests.acceptance.service.test_notifications import Receiver


@pytest.mark.parametrize("empty_database_url", ["sqlite"], indirect=True)
def test_a_job_that_notifies_the_services_own_host_is_refused(
    start_service: Any,
    database: Database,
    tmp_path: Path,
    docker_cli: Any,
) -> None:
    receiver = Receiver()
    receiver.start()
    try:
        _refused_then_granted(start_service, database, tmp_path, docker_cli, receiver)
    finally:
        receiver.stop()


def _refused_then_granted(
    start_service: Any, database: Database, tmp_path: Path, docker_cli: Any, receiver: Receiver
) -> None:
    jobs = write_jobs(
        tmp_path,
        f"""
- name: snoops
  schedule: "0 0 1 1 *"
  image: IMAGE
  command: [sh, -c, "exit 3"]
  ping: "http://127.0.0.1:{receiver.port}/ping"
  notify: [{{webhook: "http://localhost:{receiver.port}/hook"}}]
""",
    )
    docker_cli("jobs", "apply", str(jobs))
    start_service()
    wait_for(lambda: (tmp_path / "health.json").exists(), 30, "the service to start")
    docker_cli("jobs", "run", "snoops", "--detach")
    store = Store(database)

    def tried() -> list[Any]:
        items = store.notifications(job="snoops")
        return items if len(items) == 3 and all(item.answers for item in items) else []

    items = wait_for(tried, 30, "an attempt at each notification")
    refusal = (
        f"refused: 127.0.0.1:{receiver.port} is a loopback address; "
        "ORCHESTRATOR_NOTIFY_ALLOWED_HOSTS can allow it"
    )
    assert {item.answers[0].get("error") for item in items} == {refusal}
    assert not any(item.status.value == "delivered" for item in items)
    assert receiver.received == [] and receiver.pinged == []
    tested = docker_cli("notifications", "test", "snoops", expect=1).stdout
    assert f"not delivered: {refusal}" in tested and receiver.received == []
    docker_cli.env["ORCHESTRATOR_NOTIFY_ALLOWED_HOSTS"] = "localhost"
    assert "HTTP 204" in docker_cli("notifications", "test", "snoops").stdout
    assert [event["event"] for event in receiver.events()] == ["test"]

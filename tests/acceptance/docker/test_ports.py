"""Port leases against the real engine: distinct, skipping foreign ports, retried on
"already allocated", released whatever the end."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from orchestrator.engine import ContainerSpec
from orchestrator.engine.errors import PortAllocatedError
from orchestrator.ports import PortRange
from orchestrator.records import RunRecord, RunStatus, RunTrigger
from orchestrator.store.database import Database
from orchestrator.store.leases import PortLeaseRepository
from orchestrator.store.runs import RunRepository
from tests.support.engines import JOB_IMAGE, job_spec

pytestmark = pytest.mark.docker
CONCURRENT = 20


def get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
        return str(answer.read().decode())


def leases(database: Database) -> list[Any]:
    with database.session() as session:
        return PortLeaseRepository(session).list()


def test_twenty_runs_at_once_each_answer_on_their_own_leased_port(
    make_launcher: Any, database: Database, tmp_path: Path
) -> None:
    control = tmp_path / "ctl"
    control.mkdir()
    spec = job_spec(
        name="server",
        command=[
            "sh",
            "-c",
            "mkdir -p /www; echo $ORCHESTRATOR_PORT_8080 > /www/index.html; "
            "httpd -p 8080 -h /www; while [ ! -f /ctl/stop ]; do sleep 0.1; done",
        ],
        volumes=[f"{control}:/ctl:ro"],
        timeout="2m",
        ports=["8080"],
    )
    outcomes: list[RunRecord] = []
    lock = threading.Lock()

    def one() -> None:
        launcher = make_launcher()
        run = launcher.queue(spec, RunTrigger.MANUAL)
        result = launcher.execute(run, spec)
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=one) for _ in range(CONCURRENT)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with database.session() as session:
                running = RunRepository(session).list(status=RunStatus.RUNNING, limit=None)
            if len(running) == CONCURRENT:
                break
            time.sleep(0.2)
        assert len(running) == CONCURRENT, f"only {len(running)} runs started"
        ports = [run.ports["8080/tcp"] for run in running]
        assert len(set(ports)) == CONCURRENT
        assert all(port in PortRange(20000, 20999) for port in ports)
        assert sorted(lease.port for lease in leases(database)) == sorted(ports)
        for port in ports:  # each answers from the host, on its own port, knowing it
            deadline = time.monotonic() + 10
            while True:
                try:
                    assert get(port).strip() == str(port)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
    finally:
        (control / "stop").touch()
        for thread in threads:
            thread.join(120)
    assert len(outcomes) == CONCURRENT
    assert all(run.status is RunStatus.SUCCEEDED for run in outcomes), [r.error for r in outcomes]
    assert leases(database) == []


def test_ports_published_by_others_are_skipped(
    make_launcher: Any, docker_client: Any, test_label: dict[str, str]
) -> None:
    foreign = docker_client.containers.run(
        JOB_IMAGE, ["sleep", "60"], ports={"80/tcp": 21600}, labels=test_label, detach=True
    )
    assert foreign.status in ("created", "running")
    launcher = make_launcher(port_pool=PortRange(21600, 21601))
    spec = job_spec(
        name="polite", ports=["8080"], command=["sh", "-c", "echo $ORCHESTRATOR_PORT_8080"]
    )
    for _ in range(3):
        run = launcher.queue(spec, RunTrigger.MANUAL)
        done = launcher.execute(run, spec)
        assert done.status is RunStatus.SUCCEEDED
        assert (done.ports, done.output) == ({"8080/tcp": 21601}, "21601\n")
    pinned = job_spec(name="pinned", ports=["21600:80"])
    refused = launcher.execute(launcher.queue(pinned, RunTrigger.MANUAL), pinned)
    assert refused.status is RunStatus.FAILED
    assert refused.error == (
        "job 'pinned': pinned host port 21600/tcp is already published by another container"
    )


def test_a_port_the_engine_cannot_bind_is_swapped_for_the_next(make_launcher: Any) -> None:
    # Something outside any container holds 21701: only the engine can tell us.
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("0.0.0.0", 21701))
    holder.listen()
    try:
        launcher = make_launcher(port_pool=PortRange(21701, 21702))
        name = "tenacious"
        spec = job_spec(name=name, ports=["8080"], command=["true"])
        for _ in range(4):  # whichever port is tried first, every run ends on 21702
            done = launcher.execute(launcher.queue(spec, RunTrigger.MANUAL), spec)
            assert (done.status, done.ports) == (RunStatus.SUCCEEDED, {"8080/tcp": 21702})
        pinned = job_spec(name="stubborn", ports=["21701:8080"])
        refused = launcher.execute(launcher.queue(pinned, RunTrigger.MANUAL), pinned)
        assert refused.status is RunStatus.FAILED
        assert refused.error and "pinned host port 21701" in refused.error
        assert "address already in use" in refused.error
    finally:
        holder.close()


def test_the_engine_reports_an_allocated_port(
    make_launcher: Any, test_label: dict[str, str]
) -> None:
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("0.0.0.0", 21801))
    holder.listen()
    engine = make_launcher().engine
    container_id = engine.create(
        ContainerSpec(
            name=f"orch-test-{test_label['orchestrator.test'][:8]}",
            image=JOB_IMAGE,
            labels=test_label,
            command=["true"],
            ports={"80/tcp": ("0.0.0.0", 21801)},
        )
    )
    try:
        with pytest.raises(PortAllocatedError) as caught:
            engine.start(container_id)
        assert caught.value.port == 21801
    finally:
        holder.close()
        engine.remove(container_id)


def test_an_exhausted_pool_fails_the_run_clearly(
    make_launcher: Any, docker_client: Any, test_label: dict[str, str]
) -> None:
    docker_client.containers.run(
        JOB_IMAGE, ["sleep", "60"], ports={"80/tcp": 21900}, labels=test_label, detach=True
    )
    launcher = make_launcher(port_pool=PortRange(21900, 21900))
    spec = job_spec(name="crowded", ports=["8080"])
    done = launcher.execute(launcher.queue(spec, RunTrigger.MANUAL), spec)
    assert done.status is RunStatus.FAILED
    assert done.error == (
        "job 'crowded': no free host port in the pool 21900-21900 for 8080/tcp "
        "(0 leased, 1 published by other containers)"
    )


def test_a_pinned_port_is_leased_exclusively_and_listed(
    make_launcher: Any, docker_cli: Any, database: Database
) -> None:
    launcher = make_launcher()
    spec = job_spec(name="pin", ports=["22000:8080", "5353/udp"], command=["sleep", "3"])
    listed: list[Any] = []
    second: list[RunRecord] = []

    def on_running(run: RunRecord) -> None:
        listed.extend(json.loads(docker_cli("ports", "list", "--json").stdout))
        other = make_launcher()
        second.append(other.execute(other.queue(spec, RunTrigger.MANUAL), spec))

    first = launcher.execute(launcher.queue(spec, RunTrigger.MANUAL), spec, on_running=on_running)
    assert first.status is RunStatus.SUCCEEDED
    assert first.ports["8080/tcp"] == 22000 and first.ports["5353/udp"] in PortRange(20000, 20999)
    assert sorted(
        (p["port"], p["protocol"], p["container_port"], p["job"], p["run"]) for p in listed
    ) == sorted(
        [
            (22000, "tcp", 8080, "pin", first.id),
            (first.ports["5353/udp"], "udp", 5353, "pin", first.id),
        ]
    )
    (blocked,) = second  # its container publishes the port: the engine says no first
    assert blocked.status is RunStatus.FAILED
    assert blocked.error == (
        "job 'pin': pinned host port 22000/tcp is already published by another container"
    )
    assert docker_cli("ports", "list").stdout.strip() == "no ports leased"
    assert leases(database) == []


def test_the_ledger_refuses_a_pinned_port_leased_to_another_run(
    make_launcher: Any, database: Database
) -> None:
    from orchestrator.ports import PinnedPortTakenError

    launcher = make_launcher()
    spec = job_spec(name="pin", ports=["22001:8080"])
    holder, contender = (launcher.queue(spec, RunTrigger.MANUAL) for _ in range(2))
    assert launcher.leaser.lease(holder.id, "pin", spec.ports, None) == {"8080/tcp": 22001}
    with pytest.raises(PinnedPortTakenError) as caught:
        launcher.leaser.lease(contender.id, "pin", spec.ports, None)
    assert str(caught.value) == (
        f"job 'pin': pinned host port 22001/tcp is leased by run {holder.id} of job 'pin'"
    )
    launcher.leaser.release(holder.id)
    assert launcher.leaser.lease(contender.id, "pin", spec.ports, None) == {"8080/tcp": 22001}
    launcher.leaser.release(contender.id)
    assert leases(database) == []

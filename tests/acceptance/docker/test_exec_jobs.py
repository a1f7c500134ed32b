"""Exec jobs on the real engine: a command run inside a running container, as the job
files that try it would. Each test makes its own target container (found and removed
by the test's label)."""

from __future__ import annotations

import gc
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.records import RunRecord, RunStatus, RunTrigger
from orchestrator.runner.cancelling import stop_cancelled
from orchestrator.spec import parse_job
from tests.support.engines import JOB_IMAGE, job_spec

# The docker SDK's attach stream of an exec leaves a socket object for the collector
# even when closed (seen on SDK 7 over the unix socket); it is collected here, in this
# module's tests, where that warning is not ours to fail on.
pytestmark = [
    pytest.mark.docker,
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]


@pytest.fixture(autouse=True)
def _collect_sockets() -> Iterator[None]:
    yield
    gc.collect()


def exec_spec(**fields: Any) -> Any:
    return parse_job({"name": "in-target", "schedule": "@daily", "kind": "exec", **fields})


@pytest.fixture
def target(docker_client: Any, test_label: dict[str, str]) -> Any:
    """A running container to exec into."""
    return docker_client.containers.run(
        JOB_IMAGE,
        ["sleep", "300"],
        name=f"exec-target-{uuid.uuid4().hex[:8]}",
        labels={**test_label, "role": "db"},
        detach=True,
    )


def processes(container: Any) -> str:
    """What runs in the container now (read over a stream we close: no socket left)."""
    api = container.client.api
    made = api.exec_create(container.id, ["ps", "-o", "pid,args"])
    stream = api.exec_start(made["Id"], stream=True)
    try:
        return b"".join(stream).decode()
    finally:
        stream.close()


def test_an_exec_streams_its_output_live_and_records_exit_and_target(
    make_launcher: Any, target: Any
) -> None:
    launcher = make_launcher()
    spec = exec_spec(
        container=target.name,
        user="nobody",
        working_dir="/tmp",
        environment={"WHO": "x"},
        command=["sh", "-c", "echo one $WHO $(id -un) $(pwd); sleep 1; echo two >&2; exit 4"],
    )
    seen: list[tuple[float, bytes]] = []
    run = launcher.queue(spec, RunTrigger.MANUAL)
    finished: RunRecord = launcher.execute(
        run, spec, on_output=lambda c: seen.append((time.monotonic(), c))
    )
    ended = time.monotonic()
    assert (finished.status, finished.exit_code) == (RunStatus.FAILED, 4)
    assert finished.output == "one x nobody /tmp\ntwo\n"
    assert seen and ended - seen[0][0] >= 0.8, "the first line came only at the end"
    assert finished.image_digest == f"{target.name}@{target.id}"


def _assert_no_sleeper(container: Any) -> None:
    listing = processes(container)
    assert "sleep 1000" not in listing and "sleep 1001" not in listing, listing


def test_a_timed_out_exec_leaves_no_process_behind(make_launcher: Any, target: Any) -> None:
    launcher = make_launcher()
    spec = exec_spec(
        container=target.name, timeout="1s", command=["sh", "-c", "sleep 1000 & sleep 1001"]
    )
    run = launcher.queue(spec, RunTrigger.MANUAL)
    finished = launcher.execute(run, spec)
    assert finished.status is RunStatus.TIMED_OUT, finished.error
    _assert_no_sleeper(target)


def test_a_cancelled_exec_leaves_no_process_behind(make_launcher: Any, target: Any) -> None:
    launcher = make_launcher()
    spec = exec_spec(container=target.name, command=["sh", "-c", "sleep 1000 & sleep 1001"])
    run = launcher.queue(spec, RunTrigger.MANUAL)
    ended: list[RunRecord] = []
    running = threading.Event()
    follower = threading.Thread(
        target=lambda: ended.append(launcher.execute(run, spec, on_running=lambda _: running.set()))
    )
    follower.start()
    assert running.wait(30)
    deadline = time.monotonic() + 30
    while "sleep 1001" not in processes(target) and time.monotonic() < deadline:
        time.sleep(0.1)
    current = launcher.store.request_cancel(run.id, launcher.clock())
    cancelled = stop_cancelled(launcher.store, lambda: launcher.engine, current, 2, launcher.clock)
    assert cancelled.status is RunStatus.CANCELLED
    _assert_no_sleeper(target)
    follower.join(30)
    assert ended and ended[0].status is RunStatus.CANCELLED


def test_an_exec_into_a_missing_container_fails_with_125(make_launcher: Any) -> None:
    spec = exec_spec(container=f"gone-{uuid.uuid4().hex[:8]}", command="true")
    launcher = make_launcher()
    run = launcher.execute(launcher.queue(spec, RunTrigger.MANUAL), spec)
    assert (run.status, run.exit_code) == (RunStatus.FAILED, 125)
    assert run.error == f"container {spec.container!r} not found"


def test_an_exec_into_a_stopped_container_fails_with_125(
    make_launcher: Any, docker_client: Any, test_label: dict[str, str]
) -> None:
    stopped = docker_client.containers.create(JOB_IMAGE, ["sleep", "300"], labels=test_label)
    spec = exec_spec(container=stopped.id, command="true")
    launcher = make_launcher()
    run = launcher.execute(launcher.queue(spec, RunTrigger.MANUAL), spec)
    assert (run.status, run.exit_code) == (RunStatus.FAILED, 125)
    assert run.error == f"container {stopped.name!r} is not running"


def test_a_selector_picks_a_running_match(make_launcher: Any, target: Any) -> None:
    spec = exec_spec(selector={"role": "db", **target.labels}, command="hostname")
    launcher = make_launcher()
    run = launcher.execute(launcher.queue(spec, RunTrigger.MANUAL), spec)
    assert run.status is RunStatus.SUCCEEDED and run.output == f"{target.id[:12]}\n"


def test_an_exec_into_a_container_holding_the_socket_needs_the_grant(
    make_launcher: Any, docker_client: Any, test_label: dict[str, str]
) -> None:
    # (A privileged target is refused the same way: tests/unit/test_exec_keys.py; this
    # engine may not start privileged containers.)
    powerful = docker_client.containers.run(
        JOB_IMAGE,
        ["sleep", "300"],
        labels=test_label,
        detach=True,
        volumes={"/var/run": {"bind": "/host-run", "mode": "ro"}},
    )
    spec = exec_spec(container=powerful.name, command=["touch", "/tmp/was-here"])
    launcher = make_launcher()
    run = launcher.execute(launcher.queue(spec, RunTrigger.MANUAL), spec)
    why = "holds the engine's socket"
    assert (run.status, run.error) == (
        RunStatus.FAILED,
        f"job 'in-target': exec into container {powerful.name!r} ({why}) needs the "
        "docker_socket grant: set ORCHESTRATOR_ALLOW_PRIVILEGED_JOBS=true to allow it",
    )
    assert powerful.exec_run(["test", "-e", "/tmp/was-here"]).exit_code == 1
    granted = make_launcher(allow_privileged_jobs=True)
    assert granted.execute(granted.queue(spec, RunTrigger.MANUAL), spec).status is (
        RunStatus.SUCCEEDED
    )


def test_per_job_labels_go_on_the_container(make_launcher: Any, docker_client: Any) -> None:
    spec = job_spec(name="labelled", command=["true"], labels={"team": "data"})
    seen: dict[str, str] = {}

    def on_running(run: RunRecord) -> None:
        container_id = launcher.store.run(run.id).container_id
        seen.update(docker_client.containers.get(container_id).labels)

    launcher = make_launcher()
    run = launcher.execute(launcher.queue(spec, RunTrigger.MANUAL), spec, on_running=on_running)
    assert run.status is RunStatus.SUCCEEDED
    assert seen["team"] == "data" and seen["orchestrator.job"] == "labelled"

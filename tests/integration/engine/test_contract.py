"""The engine contract, checked against the fake and the real engine alike: the fake
that fast tests rely on cannot drift from Docker, because the same checks bind both."""

from __future__ import annotations

import gc
import random
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.engine import JOB_LABEL, MANAGED_LABEL, RUN_LABEL, ContainerSpec, Engine
from orchestrator.engine.errors import (
    ContainerGoneError,
    EngineError,
    EngineUnavailableError,
    ImageUnavailableError,
    NetworkNotFoundError,
    PortAllocatedError,
)
from orchestrator.engine.fake import FakeEngine, Script
from orchestrator.spec import PullPolicy
from tests.support.engines import JOB_IMAGE

KINDS = [
    "fake",
    pytest.param("docker", marks=pytest.mark.docker),
    pytest.param("swarm", marks=[pytest.mark.docker, pytest.mark.swarm]),
]


class Stage:
    """Arranges a workload that behaves as asked, on either engine."""

    def __init__(self, engine: Engine, kind: str, labels: dict[str, str]) -> None:
        self.engine, self.kind, self.labels = engine, kind, labels

    def spec(
        self,
        *,
        exit_code: int = 0,
        output: str = "",
        seconds: float = 0,
        run_id: int = 1,
        ports: dict[str, tuple[str, int]] | None = None,
        network: str | None = None,
        missing_command: bool = False,
    ) -> ContainerSpec:
        job = f"contract-{uuid.uuid4().hex[:8]}"
        if self.kind == "fake":
            assert isinstance(self.engine, FakeEngine)
            self.engine.add_image(JOB_IMAGE)
            refused = "exec: no such file or directory" if missing_command else None
            self.engine.script(
                job, Script(exit_code, output.encode(), seconds, start_error=refused)
            )
            command: list[str] = []
        elif missing_command:
            command = ["/no/such/program"]
        else:
            text = output.replace("\n", "\\n")
            command = ["sh", "-c", f"printf '{text}'; sleep {seconds}; exit {exit_code}"]
        return ContainerSpec(
            name=f"{job}-{run_id}",
            image=JOB_IMAGE,
            labels={**self.labels, MANAGED_LABEL: "true", JOB_LABEL: job, RUN_LABEL: str(run_id)},
            command=command or None,
            ports=ports or {},
            network=network,
        )

    def started(self, **fields: Any) -> str:
        handle = self.engine.create(self.spec(**fields))
        self.engine.start(handle)
        return handle


@pytest.fixture(params=KINDS)
def stage(request: pytest.FixtureRequest) -> Iterator[Stage]:
    if request.param == "fake":
        yield Stage(FakeEngine(), "fake", {})
        return
    from orchestrator.engine import DockerEngine
    from orchestrator.engine.swarm import SwarmEngine

    if request.param == "swarm":
        labels: dict[str, str] = request.getfixturevalue("swarm_label")
        swarm = SwarmEngine.from_env(pending_timeout=20)
        yield Stage(swarm, "docker", labels)
        swarm.close()
        return
    labels = request.getfixturevalue("test_label")  # removes what we made
    engine = DockerEngine.from_env()
    yield Stage(engine, "docker", labels)
    engine.close()


def test_a_workload_runs_to_its_exit_with_its_output(stage: Stage) -> None:
    engine = stage.engine
    handle = stage.started(exit_code=3, output="hello\n")
    done = engine.wait(handle, None)
    assert done is not None and done.exit_code == 3 and not done.oom_killed
    state = engine.state(handle)
    assert state is not None and not state.running and state.exit_code == 3
    assert state.status == "exited"
    assert b"".join(engine.follow_output(handle)) == b"hello\n"
    assert b"".join(engine.output(handle)) == b"hello\n"


def test_wait_gives_none_while_it_runs_and_kill_ends_it(stage: Stage) -> None:
    engine = stage.engine
    handle = stage.started(seconds=30)
    assert engine.wait(handle, 0.5) is None
    assert engine.is_running(handle)
    engine.kill(handle)
    done = engine.wait(handle, 10)
    assert done is not None and done.exit_code == 137
    assert not engine.is_running(handle)


def test_stop_ends_a_running_workload(stage: Stage) -> None:
    engine = stage.engine
    handle = stage.started(seconds=30)
    engine.stop(handle, grace_seconds=1)
    state = engine.state(handle)
    assert state is not None and not state.running and state.exit_code in (137, 143)


def test_a_removed_workload_is_gone_and_removing_again_is_fine(stage: Stage) -> None:
    engine = stage.engine
    handle = stage.started(seconds=30)
    engine.remove(handle)
    assert engine.state(handle) is None
    engine.remove(handle)
    engine.kill(handle)
    engine.stop(handle, 1)
    with pytest.raises(ContainerGoneError):
        engine.wait(handle, 1)
    with pytest.raises(ContainerGoneError):  # its output too: a viewer then shows the run's end
        list(engine.output(handle))


def test_discard_unstarted_removes_only_what_does_not_run(stage: Stage) -> None:
    engine = stage.engine
    created = engine.create(stage.spec())
    assert engine.discard_unstarted(created) is True
    assert engine.state(created) is None
    assert engine.discard_unstarted(created) is True  # gone already: fine
    running = stage.started(seconds=30)
    assert engine.discard_unstarted(running) is False  # a frozen scheduler started it
    state = engine.state(running)
    assert state is not None and state.running
    engine.remove(running)


def test_images_follow_the_pull_policy(stage: Stage) -> None:
    engine = stage.engine
    stage.spec()  # makes the image exist on the fake
    assert engine.ensure_image(JOB_IMAGE, PullPolicy.NEVER)
    with pytest.raises(ImageUnavailableError, match="pull policy is never"):
        engine.ensure_image("local/no-such-image:1", PullPolicy.NEVER)


def test_a_host_port_taken_fails_the_start_with_the_port(stage: Stage) -> None:
    engine = stage.engine
    port = random.randint(23100, 23199)
    first = stage.started(seconds=30, ports={"8080/tcp": ("0.0.0.0", port)})
    assert ("0.0.0.0", port, "tcp") in engine.published_ports()
    second = engine.create(stage.spec(seconds=30, ports={"8080/tcp": ("0.0.0.0", port)}))
    with pytest.raises(PortAllocatedError) as refused:
        engine.start(second)
    assert refused.value.port == port
    state = engine.state(second)
    assert state is not None and state.status == "created"
    for handle in (first, second):
        engine.remove(handle)


def test_a_start_the_engine_refuses_is_an_engine_error(stage: Stage) -> None:
    engine = stage.engine
    handle = engine.create(stage.spec(missing_command=True))
    with pytest.raises(EngineError) as refused:
        engine.start(handle)
    assert not isinstance(refused.value, PortAllocatedError | EngineUnavailableError)
    engine.remove(handle)


def test_managed_finds_our_workloads_by_run(stage: Stage) -> None:
    engine = stage.engine
    spec = stage.spec(seconds=30, run_id=424242)
    handle = engine.create(spec)
    other = engine.create(stage.spec(seconds=30, run_id=424243))
    (found,) = engine.managed(run_id=424242)
    assert found.handle == handle and found.run_id == 424242
    assert found.job == spec.labels[JOB_LABEL] and found.status == "created"
    assert handle in {workload.handle for workload in engine.managed()}
    engine.remove(handle)
    assert engine.managed(run_id=424242) == []
    engine.remove(other)


def test_a_missing_network_is_named(stage: Stage) -> None:
    """At create or at start (Docker knows only then): NetworkNotFoundError either way."""
    engine = stage.engine
    assert not engine.network_exists("no-such-network-8d1f")
    assert engine.network_exists("bridge")
    with pytest.raises(NetworkNotFoundError, match="no-such-network-8d1f"):
        handle = engine.create(stage.spec(network="no-such-network-8d1f"))
        try:
            engine.start(handle)
        finally:
            engine.remove(handle)


@pytest.fixture(params=KINDS)
def away(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An engine that does not answer."""
    if request.param == "fake":
        fake = FakeEngine()
        fake.go_away()
        yield fake
        return
    import docker

    from orchestrator.engine import DockerEngine

    client = docker.DockerClient(base_url="unix:///tmp/no-engine-here.sock", version="1.41")
    yield DockerEngine(client)
    client.close()
    with warnings.catch_warnings():  # the leaked sockets go now, not in a later test
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


# docker-py leaves the sockets of failed connects to the garbage collector
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_engine_that_does_not_answer_is_unavailable(away: Engine) -> None:
    for call in (
        away.facts,
        away.published_ports,
        lambda: away.managed(),
        lambda: away.state("abc"),
        lambda: away.ensure_image(JOB_IMAGE, PullPolicy.MISSING),
        lambda: away.remove("abc"),
    ):
        with pytest.raises(EngineUnavailableError):
            call()


def test_a_fake_engine_that_comes_back_answers_again() -> None:
    fake = FakeEngine()
    fake.go_away()
    with pytest.raises(EngineUnavailableError):
        fake.facts()
    fake.come_back()
    assert fake.facts().name == "fake-engine"


def test_a_network_is_found_by_its_name_its_id_and_a_prefix_of_its_id(stage: Stage) -> None:
    """As the engine resolves a container's network: the policy compares what it finds."""
    engine = stage.engine
    bridge = engine.find_network("bridge")
    assert bridge is not None and bridge.name == "bridge" and len(bridge.id) == 64
    assert engine.find_network(bridge.id) == bridge
    assert engine.find_network(bridge.id[:12]) == bridge
    assert engine.find_network("BRIDGE") is None  # names are compared as written
    assert engine.find_network("no-such-network-8d1f") is None


def test_labelled_containers_are_listed_and_their_life_is_in_the_event_stream(
    stage: Stage,
) -> None:
    """Label discovery's two calls: one listing, and start/die/destroy/rename live."""
    import subprocess
    import threading
    import time

    mark = {**stage.labels, "contract.mark": uuid.uuid4().hex}
    events = stage.engine.container_events(mark)
    seen: list[tuple[str, str]] = []
    follower = threading.Thread(target=lambda: seen.extend((e.action, e.id) for e in events))
    follower.start()
    name = f"contract-labelled-{mark['contract.mark'][:8]}"
    try:
        if isinstance(stage.engine, FakeEngine):
            ident = stage.engine.run_container(name, mark)
            stage.engine.rename_container(name, name + "-b")
            stage.engine.remove_container(name + "-b")
        else:
            flags = [f for k, v in mark.items() for f in ("--label", f"{k}={v}")]
            run = ["docker", "run", "-d", "--name", name, *flags, JOB_IMAGE, "sleep", "60"]
            ident = subprocess.run(run, check=True, capture_output=True, text=True).stdout.strip()
        listed = stage.engine.containers(mark)
        if not isinstance(stage.engine, FakeEngine):
            assert [(c.id, c.name, c.running) for c in listed] == [(ident, name, True)]
            assert listed[0].labels["contract.mark"] == mark["contract.mark"]
            subprocess.run(["docker", "rename", name, name + "-b"], check=True)
            subprocess.run(["docker", "rm", "-f", name + "-b"], check=True, capture_output=True)
        deadline = time.monotonic() + 10
        while ("destroy", ident) not in seen and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        events.close()
        follower.join(10)
    actions = [action for action, of in seen if of == ident]
    assert actions == ["start", "rename", "die", "destroy"]
    assert stage.engine.containers(mark) == []

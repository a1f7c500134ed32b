"""The launcher on the fake engine: what an interruption leaves behind, the calls a run
costs, and what a launch slot waits for."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from orchestrator.engine.fake import FakeEngine
from orchestrator.hostpaths import ON_HOST
from orchestrator.records import RunStatus, RunTrigger
from orchestrator.runner import Launched, LaunchSettings, RunLauncher
from orchestrator.spec import parse_job
from orchestrator.store import migrations
from orchestrator.store.database import Database
from orchestrator.store.facade import Store
from tests.component.conftest import IMAGE

if TYPE_CHECKING:
    from orchestrator.operations import Operations

SPEC = parse_job({"name": "j", "schedule": "@daily", "image": IMAGE})
MakeLauncher = Callable[..., RunLauncher]


@pytest.fixture
def make_launcher(tmp_path: Path) -> Iterator[MakeLauncher]:
    """A launcher on a fresh SQLite database and the given fake engine (which has IMAGE)."""
    opened: list[Database] = []

    def make(engine: FakeEngine, **settings: Any) -> RunLauncher:
        database = Database(f"sqlite:///{tmp_path / f'l{len(opened)}.db'}")
        opened.append(database)
        migrations.upgrade(database)
        engine.add_image(IMAGE)
        return RunLauncher(
            Store(database), engine, ON_HOST, LaunchSettings(engine_socket=None, **settings)
        )

    yield make
    for database in opened:
        database.dispose()


class InterruptedStart(FakeEngine):
    """Ctrl-C or SIGTERM lands while the engine starts the container."""

    def start(self, handle: str) -> None:
        super().start(handle)
        raise KeyboardInterrupt


@pytest.mark.parametrize("engine", [InterruptedStart()])
def test_an_interrupted_start_leaves_no_container(engine: Any, make_launcher: MakeLauncher) -> None:
    launcher = make_launcher(engine)
    run = launcher.queue(SPEC, RunTrigger.MANUAL)
    with pytest.raises(KeyboardInterrupt):
        launcher.execute(run, SPEC)
    assert engine.managed() == []  # created, started, interrupted: removed all the same
    assert launcher.store.run(run.id).status is RunStatus.CANCELLED


def test_a_run_no_one_watches_live_is_waited_for_then_read_once(
    make_launcher: MakeLauncher,
) -> None:
    # The service's followers: the same engine calls as a bare create, start, wait, logs,
    # remove; no live stream (a follower per run in the engine, read twice at the end).
    engine = FakeEngine()
    engine.script("j", output=b"one\ntwo\n", exit_code=3)
    launcher = make_launcher(engine)
    run = launcher.queue(SPEC, RunTrigger.MANUAL)
    engine.calls.clear()
    finished = launcher.execute(run, SPEC)
    assert (finished.status, finished.exit_code) == (RunStatus.FAILED, 3)
    assert launcher.store.run(run.id).output == "one\ntwo\n"
    after_start = engine.calls[engine.calls.index("start") + 1 :]
    assert "follow_output" not in after_start
    assert after_start.index("wait") < after_start.index("output") < after_start.index("remove")
    # Watched live (a foreground `jobs run`): followed as it comes.
    shown: list[bytes] = []
    run = launcher.queue(SPEC, RunTrigger.MANUAL)
    engine.calls.clear()
    launcher.execute(run, SPEC, on_output=shown.append)
    assert b"".join(shown) == b"one\ntwo\n" and "follow_output" in engine.calls


class SlowRemoval(FakeEngine):
    """An engine whose removes hang until told to go on."""

    def __init__(self) -> None:
        super().__init__()
        self.go_on = threading.Event()
        self.removing = threading.Event()

    def remove(self, handle: str) -> None:
        self.removing.set()
        self.go_on.wait(30)
        super().remove(handle)


def test_a_slow_removal_does_not_hold_up_the_next_launch(make_launcher: MakeLauncher) -> None:
    # Removes have their own bound: with as many removes in flight as launches allowed,
    # the next run is still created and started (they shared one, and launches waited).
    engine = SlowRemoval()
    launcher = make_launcher(engine, max_parallel_launches=1)
    first = launcher.queue(SPEC, RunTrigger.MANUAL)
    ending = threading.Thread(target=launcher.execute, args=(first, SPEC))
    ending.start()
    try:
        assert engine.removing.wait(10)  # the first run's remove is in flight
        second = launcher.queue(SPEC, RunTrigger.MANUAL)
        launching = threading.Thread(target=launcher.launch, args=(second, SPEC))
        launching.start()
        launching.join(5)
        assert not launching.is_alive(), "the launch waited for another run's remove"
        assert engine.calls.count("start") == 2
    finally:
        engine.go_on.set()
        ending.join(10)


def test_a_launch_leaves_the_start_to_be_recorded_by_the_follower(
    make_launcher: MakeLauncher,
) -> None:
    # The launch slot creates and starts, then goes on to the next launch; the run's
    # start is written by its follower (a fifth of a slot's time went to that write).
    engine = FakeEngine()
    engine.script("j", seconds=30)
    launcher = make_launcher(engine)
    run = launcher.queue(SPEC, RunTrigger.MANUAL)
    launched = launcher.launch(run, SPEC)
    assert isinstance(launched, Launched)
    stored = launcher.store.run(run.id)
    assert (stored.status, stored.container_id) == (RunStatus.PENDING, launched.container_id)
    # Cancelled between its start and its follower: the follower kills it, and it ends
    # cancelled, its start never recorded as running.
    launcher.store.request_cancel(run.id, launched.started_at)
    told: list[int] = []
    finished = launcher.follow(launched, on_running=lambda record: told.append(record.id))
    assert finished.status is RunStatus.CANCELLED and told == []
    assert "kill" in engine.calls and engine.managed() == []
    again = launcher.queue(SPEC, RunTrigger.MANUAL)
    launched = launcher.launch(again, SPEC)
    assert isinstance(launched, Launched)
    engine.script("j", seconds=0)
    engine.kill(launched.container_id)  # ends it now: a job that exits 137
    finished = launcher.follow(launched, on_running=lambda record: told.append(record.id))
    assert told == [again.id]
    assert finished.started_at == launched.started_at


def _operations(launcher: RunLauncher, engine: FakeEngine) -> Operations:
    """The use cases over this launcher's store and engine (what a viewer calls)."""
    from orchestrator.operations import Backends, Operations

    return Operations(
        Backends(
            open_store=lambda: launcher.store,
            engine=lambda: engine,
            where=lambda: ON_HOST,
            launch_settings=lambda: launcher.settings,
            launcher=lambda: launcher,
            secrets_dir="/nonexistent",
        ),
        actor="test",
    )


def test_a_viewer_whose_run_ended_meanwhile_gets_its_end_not_the_engines_error(
    make_launcher: MakeLauncher,
) -> None:
    # A container being removed answers 409 (not 404) to a log read: if the run has
    # ended meanwhile, the viewer gets the run's end from the history.
    from datetime import UTC, datetime

    from orchestrator.engine.errors import EngineError
    from orchestrator.operations.runs import Ended
    from orchestrator.spec import LoadedJob

    class BeingRemoved(FakeEngine):
        ended = True

        def follow_output(self, handle: str) -> Any:
            if self.ended:
                store.finish_run(run.id, status=RunStatus.SUCCEEDED, finished_at=datetime.now(UTC))
            raise EngineError("reading the container's output: 409 marked for removal")
            yield b""

    engine = BeingRemoved()
    launcher = make_launcher(engine)
    store = launcher.store
    store.apply_jobs([LoadedJob(SPEC, "test")])
    run = launcher.queue(SPEC, RunTrigger.MANUAL)
    store.set_container(run.id, "c1", "sha256:x", launcher.owner)
    store.mark_running(run.id, started_at=datetime.now(UTC), ports={})
    events = list(_operations(launcher, engine).runs.watch(run.id, follow=True))
    assert isinstance(events[-1], Ended) and events[-1].run.status is RunStatus.SUCCEEDED
    # Still running: the engine's error is the viewer's answer.
    engine.ended = False
    again = launcher.queue(SPEC, RunTrigger.MANUAL)
    store.set_container(again.id, "c2", "sha256:x", launcher.owner)
    store.mark_running(again.id, started_at=datetime.now(UTC), ports={})
    with pytest.raises(EngineError):
        list(_operations(launcher, engine).runs.watch(again.id, follow=True))


def test_a_live_stream_broken_off_after_its_output_ends_with_the_rest_from_the_history(
    make_launcher: MakeLauncher,
) -> None:
    # The engine can break a follow stream off as the run's container is removed, after
    # the last entry was sent: the viewer has had the output live, and gets what it
    # missed from the history, not the whole tail again in place of the stream.
    from datetime import UTC, datetime

    from orchestrator.engine.errors import EngineUnavailableError
    from orchestrator.operations.runs import Ended, Output
    from orchestrator.spec import LoadedJob

    recorded = {"output": "first\nsecond\n", "output_truncated": False}

    class BrokenOff(FakeEngine):
        def follow_output(self, handle: str) -> Any:
            yield b"first\n"
            store.finish_run(
                run.id, status=RunStatus.SUCCEEDED, finished_at=datetime.now(UTC), **recorded
            )
            raise EngineUnavailableError("reading the container's output: connection broken")

    engine = BrokenOff()
    launcher = make_launcher(engine)
    store = launcher.store
    store.apply_jobs([LoadedJob(SPEC, "test")])

    def watched() -> list[object]:
        nonlocal run
        run = launcher.queue(SPEC, RunTrigger.MANUAL)
        store.set_container(run.id, f"c{run.id}", "sha256:x", launcher.owner)
        store.mark_running(run.id, started_at=datetime.now(UTC), ports={})
        return list(_operations(launcher, engine).runs.watch(run.id, follow=True))

    run = launcher.queue(SPEC, RunTrigger.MANUAL)
    events = watched()
    assert [e.data for e in events if isinstance(e, Output)] == [b"first\n", b"second\n"]
    assert isinstance(events[-1], Ended) and events[-1].streamed is True
    # A history that keeps only the tail, or that does not go on from what was sent,
    # cannot tell what the viewer missed: the end says so, and the viewer shows the
    # recorded tail.
    for output, truncated in (("first\nsecond\n", True), ("other\n", False)):
        recorded.update(output=output, output_truncated=truncated)
        events = watched()
        assert [e.data for e in events if isinstance(e, Output)] == [b"first\n"]
        assert isinstance(events[-1], Ended) and events[-1].streamed is False
        assert events[-1].run.output == output


def test_a_run_releases_port_leases_only_for_a_job_that_has_ports(
    make_launcher: MakeLauncher, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A write per run that changes nothing costs every writer a turn at the database's
    # lock under load.
    engine = FakeEngine()
    launcher = make_launcher(engine)
    released: list[int] = []
    release = launcher.leaser.release

    def spy(run_id: int, port: int | None = None) -> None:
        released.append(run_id)
        release(run_id, port)

    monkeypatch.setattr(launcher.leaser, "release", spy)
    plain = launcher.execute(launcher.queue(SPEC, RunTrigger.MANUAL), SPEC)
    assert plain.status is RunStatus.SUCCEEDED
    engine.fail("start")  # one that never starts is cleaned up by the launch
    refused = launcher.execute(launcher.queue(SPEC, RunTrigger.MANUAL), SPEC)
    assert refused.status is RunStatus.FAILED
    assert released == []
    ported = parse_job({"name": "p", "schedule": "@daily", "image": IMAGE, "ports": ["8080"]})
    run = launcher.queue(ported, RunTrigger.MANUAL)
    finished = launcher.execute(run, ported)
    assert finished.status is RunStatus.SUCCEEDED and finished.ports
    assert released == [run.id]
    assert launcher.store.leases() == []


@pytest.mark.parametrize(
    "fields",
    [
        {"volumes": ["/etc:/x"]},  # a system part of the host, refused at launch
        {"network": "no-such-network"},  # a network the engine does not know
    ],
)
def test_a_job_refused_at_launch_makes_the_engine_pull_nothing(
    make_launcher: MakeLauncher, fields: dict[str, Any]
) -> None:
    # The attack: a job the launch refuses still chose an image; pulling it first would
    # let the job's author make the engine fetch from any registry, with our login.
    engine = FakeEngine()
    launcher = make_launcher(engine)
    spec = parse_job({"name": "j", "schedule": "@daily", "image": "evil.example/x:1", **fields})
    run = launcher.queue(spec, RunTrigger.MANUAL)
    engine.calls.clear()
    refused = launcher.execute(run, spec)
    assert refused.status is RunStatus.FAILED and refused.container_id is None
    assert "ensure_image" not in engine.calls, engine.calls

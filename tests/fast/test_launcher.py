"""The launcher on the fake engine: what an interruption leaves behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.engine.fake import FakeEngine
from orchestrator.hostpaths import ON_HOST
from orchestrator.launcher import LaunchSettings, RunLauncher
from orchestrator.records import RunStatus, RunTrigger
from orchestrator.spec import parse_job
from orchestrator.store import migrations
from orchestrator.store.database import Database
from tests.fast.conftest import IMAGE


class InterruptedStart(FakeEngine):
    """Ctrl-C or SIGTERM lands while the engine starts the container."""

    def start(self, handle: str) -> None:
        super().start(handle)
        raise KeyboardInterrupt


@pytest.mark.parametrize("engine", [InterruptedStart()])
def test_an_interrupted_start_leaves_no_container(engine: Any, tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'l.db'}")
    migrations.upgrade(database)
    engine.add_image(IMAGE)
    launcher = RunLauncher(database, engine, ON_HOST, LaunchSettings(engine_socket=None))
    spec = parse_job({"name": "j", "schedule": "@daily", "image": IMAGE})
    run = launcher.queue(spec, RunTrigger.MANUAL)
    with pytest.raises(KeyboardInterrupt):
        launcher.execute(run, spec)
    assert engine.managed() == []  # created, started, interrupted: removed all the same
    assert launcher.store.run(run.id).status is RunStatus.CANCELLED
    database.dispose()

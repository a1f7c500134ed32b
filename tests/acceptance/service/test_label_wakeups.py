"""Label discovery on the real engine, as a busy host meets it: containers that cannot
define jobs (no job label; a job's own container) come and go, and no look is made for
them; a container with a job label is still found at once."""

from __future__ import annotations

import subprocess
from pathlib import Path

from orchestrator.engine import DockerEngine
from orchestrator.labels import MANAGED_LABEL
from orchestrator.service.label_jobs import LabelDiscovery, LabelSettings
from orchestrator.store import migrations
from orchestrator.store.database import Database
from orchestrator.store.facade import Store
from tests.acceptance.service.conftest import wait_for

IMAGE = "local/busybox:latest"


def _run(labels: dict[str, str], *command: str) -> None:
    flags = [flag for key, value in labels.items() for flag in ("--label", f"{key}={value}")]
    subprocess.run(["docker", "run", *flags, IMAGE, *command], check=True, capture_output=True)


def test_containers_that_cannot_define_jobs_wake_no_look(
    tmp_path: Path, test_label: dict[str, str]
) -> None:
    database = Database(f"sqlite:///{tmp_path / 'labels.db'}")
    migrations.upgrade(database)
    store = Store(database)
    engine = DockerEngine.from_env()
    value = next(iter(test_label.values()))
    discovery = LabelDiscovery(store, engine, LabelSettings(filter=test_label))
    discovery.start()
    try:
        wait_for(lambda: discovery.looks == 1, 10, "the look made on subscribing")
        # The host's other work: plain containers and job containers start, die, go.
        for _ in range(3):
            _run(test_label, "true")
            _run({**test_label, MANAGED_LABEL: "true", "orchestrator.job.x.schedule": "@daily"})
        job = f"orchestrator.job.seen-{value[:8]}"
        _run(
            {**test_label, f"{job}.schedule": "@daily", f"{job}.image": IMAGE},
            "true",
        )
        seen = f"seen-{value[:8]}"
        wait_for(lambda: seen in {j.name for j in store.jobs()}, 10, "the label job stored")
        # Its start, die (and the look they fold into) are one or two looks, never one
        # per container of the six before it.
        wait_for(lambda: discovery.looks >= 2, 10, "the labelled container's look")
        assert discovery.looks <= 3, f"{discovery.looks} looks for one labelled container"
    finally:
        discovery.stop()
        engine.close()
        database.dispose()

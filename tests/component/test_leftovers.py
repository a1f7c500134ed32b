"""Containers that outlived their run (its follower died after another scheduler
cancelled it, or a scheduler died between create and record) are removed once the run
has been over a while, and nothing else is (fake engine)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from orchestrator.engine import ContainerSpec
from orchestrator.records import NewRun, RunStatus, RunTrigger
from orchestrator.store.facade import Store
from tests.component.conftest import IMAGE, Service

Serve = Callable[..., Service]


def test_containers_of_runs_long_over_are_swept_and_no_other(serve: Serve) -> None:
    service = serve()
    service.apply({"name": "job", "schedule": "@yearly"})
    store = Store(service.database)
    now = datetime.now(UTC)
    order = itertools.count(1)

    def container(ended_ago: timedelta, *, seconds: float = 0, job: str = "job") -> str:
        # Recorded as ours (no one adopts or claims it), its container made (and started
        # when it runs for a while), and only then ended `ended_ago`.
        run = store.record_run(
            NewRun(
                job="job",
                scheduled_for=now - timedelta(microseconds=next(order)),
                trigger=RunTrigger.MANUAL,
                image=IMAGE,
                owner=service.service.owner,
            )
        )
        labels = {
            "orchestrator.managed": "true",
            "orchestrator.job": job,
            "orchestrator.run": str(run.id),
            "orchestrator.launch": f"{job}-{run.id}",
        }
        image = IMAGE
        if seconds:
            image = service.engine.add_image(f"local/runs-{seconds}s:1")
            service.engine.script(image, seconds=seconds)
        handle = service.engine.create(ContainerSpec(name=f"c{run.id}", image=image, labels=labels))
        if seconds:
            service.engine.start(handle)
        store.finish_run(run.id, status=RunStatus.CANCELLED, finished_at=now - ended_ago)
        return handle

    abandoned = container(timedelta(minutes=5))  # never started: Created
    still_running = container(timedelta(minutes=5), seconds=60)
    just_over = container(timedelta(seconds=1))
    other_database = container(timedelta(minutes=5), job="another-databases-job")
    service.wait_for(lambda: service.engine.state(abandoned) is None, 15, "the sweep")
    for kept in (still_running, just_over, other_database):
        assert service.engine.state(kept) is not None

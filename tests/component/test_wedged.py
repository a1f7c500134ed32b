"""A wedged container (the engine's kill does not return, the container keeps running):
its run still ends at its timeout plus a bounded grace, recorded timed_out saying so,
and other jobs keep firing on time meanwhile (fake engine)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from orchestrator.records import NewRun, RunStatus, RunTrigger
from orchestrator.store.facade import Store
from tests.component.conftest import IMAGE, Service

Serve = Callable[..., Service]


def test_a_run_whose_container_will_not_stop_ends_at_its_timeout_plus_the_grace(
    serve: Serve,
) -> None:
    service = serve(kill_grace_seconds=1.0)
    service.apply(
        {"name": "wedged", "schedule": "@yearly", "timeout": "1s"},
        {"name": "steady", "schedule": "@every 1s", "concurrency": "allow"},
    )
    service.engine.script("wedged", seconds=30)  # it would run on and on
    service.engine.delays["kill"] = 20  # and the engine's kill does not come back
    began = time.monotonic()
    run = Store(service.database).record_run(
        NewRun(
            job="wedged", scheduled_for=datetime.now(UTC), trigger=RunTrigger.MANUAL, image=IMAGE
        )
    )
    ended = service.wait_for(
        lambda: (found := Store(service.database).run(run.id)).status.finished and found,
        10,
        "the wedged run to be recorded as ended",
    )
    took = time.monotonic() - began
    assert ended.status is RunStatus.TIMED_OUT
    assert ended.error is not None and "had not stopped container" in ended.error
    assert 2.0 <= took < 5.0, took  # 1 s of timeout and 1 s of grace, not the 20 s kill
    # Meanwhile the other job kept firing (its kill still hangs), each fire on time; the
    # second fire may be due just after the wedged run ended, so it is waited for.
    steady = service.wait_for(
        lambda: (
            (runs := [r for r in service.runs("steady") if r.started_at is not None])[1:] and runs
        ),
        10,
        "two fires of the steady job",
    )
    assert all((r.started_at - r.scheduled_for).total_seconds() < 1.0 for r in steady)


def test_replacing_a_run_whose_stop_does_not_return_delays_no_fire(serve: Serve) -> None:
    service = serve(service_settings={"claim_workers": 2})
    service.apply(
        {"name": "replaced", "schedule": "@every 1s", "concurrency": "replace"},
        {"name": "steady", "schedule": "@every 1s", "concurrency": "allow"},
    )
    service.engine.script("replaced", seconds=60)
    service.engine.delays["stop"] = 30  # each replace meets a stop that does not return
    time.sleep(8)
    # Replaced, their stops still under way: asked to cancel, not yet cancelled (their
    # containers have not stopped: a cancel does not lie).
    replaced = [r for r in service.runs("replaced") if r.cancel_requested_at is not None]
    assert len(replaced) >= 5  # more replaces than claim workers
    assert all(r.status is RunStatus.RUNNING for r in replaced)
    cutoff = datetime.now(UTC) - timedelta(seconds=2)  # fires due long enough ago
    steady = [r for r in service.runs("steady") if r.scheduled_for < cutoff]
    late = [
        r.id
        for r in steady
        if r.started_at is None or (r.started_at - r.scheduled_for).total_seconds() > 2
    ]
    assert len(steady) >= 5 and late == [], late

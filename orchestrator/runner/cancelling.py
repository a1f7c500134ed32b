"""A cancel that does not lie: a run asked to cancel is recorded cancelled only once the
engine says its container has stopped. While the stop fails the run stays active (so
`concurrency: forbid` starts no second one beside it) and its scheduler stops it again.

The CLI's and the API's `runs cancel`, the service's `replace` and the service's
retries of failed stops all end a run here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from orchestrator.engine import Engine
from orchestrator.engine.errors import EngineError
from orchestrator.errors import StopFailedError
from orchestrator.records import RunRecord
from orchestrator.store.facade import Store


def stop_cancelled(
    store: Store,
    engine: Callable[[], Engine],
    run: RunRecord,
    grace: int,
    clock: Callable[[], datetime],
) -> RunRecord:
    """Stop the container of a run asked to cancel (SIGTERM, SIGKILL after `grace`),
    then record it cancelled. StopFailedError, the run still active, when the engine
    could not be reached, failed the stop, or the container still runs."""
    if run.status.finished:
        return run
    if run.container_id is not None:
        short = run.container_id[:12]
        try:
            workloads = engine()
            workloads.stop(run.container_id, grace)
            state = workloads.state(run.container_id)
        except EngineError as error:
            raise StopFailedError(
                f"run {run.id}: cancel asked, but its container {short} could not be "
                f"stopped: {error}; it stays {run.status.value}, and its scheduler keeps "
                "stopping it"
            ) from None
        if state is not None and state.running:
            raise StopFailedError(
                f"run {run.id}: cancel asked, but its container {short} still runs; it "
                f"stays {run.status.value}, and its scheduler keeps stopping it"
            )
    return store.end_cancelled(run.id, clock())

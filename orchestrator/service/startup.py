"""`run_on_start: true`: one run when the service starts, not one per scheduler.

Several schedulers sharing a database are one service. A start fire is claimed with one
conditional UPDATE of the job's `start_fired_at`: the first scheduler to start wins, and
those starting within the window after it (--adopt-after) find it claimed. A scheduler
that starts later than that (a restart, one added later) starts the service again in
this sense and fires it once more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from orchestrator.records import RunTrigger
from orchestrator.spec import JobSpec
from orchestrator.store.facade import Store

log = logging.getLogger(__name__)


def fire_on_start(
    store: Store,
    specs: Iterable[JobSpec],
    now: datetime,
    window: timedelta,
    put: Callable[[str, datetime, RunTrigger], None],
) -> list[str]:
    """Queue the start fire of each `run_on_start` job this scheduler claims."""
    fired = []
    for spec in specs:
        if spec.run_on_start and store.claim_start(spec.name, now, window):
            log.info("%s runs once on start", spec.name, extra={"job": spec.name})
            put(spec.name, now, RunTrigger.SCHEDULE)
            fired.append(spec.name)
    return fired

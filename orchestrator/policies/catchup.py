"""Which missed fires to run after downtime. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

from orchestrator.schedule import Schedule, fires_between
from orchestrator.spec import CatchupPolicy, CatchupSpec

# `all` never floods the engine with more than this many runs of one job.
CATCHUP_LIMIT = 1000


def plan_catchup(
    schedule: Schedule,
    catchup: CatchupSpec,
    last_fire: datetime | None,
    now: datetime,
    limit: int = CATCHUP_LIMIT,
) -> list[datetime]:
    """The missed fire times in (last_fire, now] to run now, oldest first.

    No history (a new job) means nothing was missed. `deadline` drops fires older than
    now - deadline; `latest` keeps the newest one, `all` every one (the newest `limit`).
    """
    if catchup.policy is CatchupPolicy.NONE or last_fire is None:
        return []
    after = last_fire
    if catchup.deadline is not None:
        after = max(after, now - catchup.deadline - timedelta(microseconds=1))
    keep = 1 if catchup.policy is CatchupPolicy.LATEST else limit
    return fires_between(schedule, after, now, keep)

"""APScheduler 3 wiring: our schedules as its triggers, and an executor that hands each
fire (with the exact time it was scheduled for) to the service instead of running it.

APScheduler calls a job's function without its scheduled time, and drops fires later
than a grace time. Handing over at the executor keeps every fire and its time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from apscheduler.executors.base import BaseExecutor
from apscheduler.triggers.base import BaseTrigger

from orchestrator.schedule import Schedule

log = logging.getLogger(__name__)
INLINE_PREFIX = "__"  # jobs whose id starts so run in the scheduler's own thread
FireHandler = Callable[[str, datetime], None]


class ScheduleTrigger(BaseTrigger):  # type: ignore[misc]
    """Our crontab(5)/@every semantics (DST rules included) behind APScheduler's trigger API."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        after = previous_fire_time or now - timedelta(microseconds=1)
        return self.schedule.next_after(after)

    def __str__(self) -> str:
        return f"schedule[{self.schedule.expression} {self.schedule.timezone}]"


class FireExecutor(BaseExecutor):  # type: ignore[misc]
    """Passes every due run time of a job to `on_fire` at once; never blocks the scheduler."""

    def __init__(self, on_fire: FireHandler) -> None:
        super().__init__()
        self._on_fire = on_fire

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        try:
            if str(job.id).startswith(INLINE_PREFIX):
                job.func(*job.args, **job.kwargs)
            else:
                for run_time in run_times:
                    self._on_fire(job.id, run_time)
        except Exception:
            log.exception("handing over fires of %s failed", job.id)
        finally:
            # Our own concurrency policy decides about overlaps, not max_instances.
            self._run_job_success(job.id, [])

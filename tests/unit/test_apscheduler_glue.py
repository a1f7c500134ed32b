"""Our schedules drive APScheduler 3 without losing their meaning, across DST too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler

from orchestrator.schedule import parse_schedule
from orchestrator.service.apscheduler_glue import FireExecutor, ScheduleTrigger

BERLIN = ZoneInfo("Europe/Berlin")


def run_times(expression: str, tz: str, start: datetime, until: datetime) -> list[str]:
    """What APScheduler itself computes as due between start and until (coalesce off)."""
    fired: list[datetime] = []
    scheduler = BackgroundScheduler(
        timezone=UTC, executors={"default": FireExecutor(lambda j, t: fired.append(t))}
    )
    trigger = ScheduleTrigger(parse_schedule(expression, tz))
    job = Job(
        scheduler,
        id="j",
        func=print,
        trigger=trigger,
        executor="default",
        misfire_grace_time=None,
        coalesce=False,
        max_instances=1,
        name="j",
        next_run_time=trigger.get_next_fire_time(None, start),
        args=(),
        kwargs={},
    )
    return [t.astimezone(BERLIN).isoformat() for t in job._get_run_times(until)]


def test_spring_forward_through_apscheduler() -> None:
    start = datetime(2026, 3, 28, 12, tzinfo=UTC)
    assert run_times("30 2 * * *", "Europe/Berlin", start, start + timedelta(days=2)) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]


def test_fall_back_through_apscheduler() -> None:
    start = datetime(2026, 10, 24, 12, tzinfo=UTC)
    assert run_times("30 2 * * *", "Europe/Berlin", start, start + timedelta(days=2)) == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]
    hourly = run_times(
        "0 * * * *",
        "Europe/Berlin",
        datetime(2026, 10, 24, 23, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 3, 30, tzinfo=UTC),
    )
    assert hourly == [  # 01:30 CEST to 04:30 CET: the repeated hour runs again (real time)
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
        "2026-10-25T04:00:00+01:00",
    ]


def test_a_late_scheduler_gets_every_missed_fire_not_one() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    times = run_times("@every 10s", "UTC", start, start + timedelta(minutes=1))
    assert len(times) == 7  # 0s to 60s: none dropped by a misfire grace time, none coalesced


def test_the_executor_hands_over_each_fire_with_its_time() -> None:
    handed: list[tuple[str, datetime]] = []
    executor = FireExecutor(lambda job, at: handed.append((job, at)))
    scheduler: Any = BackgroundScheduler(timezone=UTC)
    executor.start(scheduler, "default")
    moments = [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)]
    job = Job(
        scheduler,
        id="nightly",
        func=print,
        trigger=ScheduleTrigger(parse_schedule("@daily")),
        executor="default",
        misfire_grace_time=None,
        coalesce=False,
        max_instances=1,
        name="nightly",
        next_run_time=moments[0],
        args=(),
        kwargs={},
    )
    executor.submit_job(job, moments)
    executor.submit_job(job, moments[:1])  # never blocked by max_instances
    assert handed == [("nightly", moments[0]), ("nightly", moments[1]), ("nightly", moments[0])]

"""crontab(5) semantics, intervals and daylight saving, checked case by case."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from orchestrator.errors import InvalidScheduleError
from orchestrator.schedule import (
    CronSchedule,
    IntervalSchedule,
    next_fire_times,
    parse_schedule,
)

START = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday


def fires(expression: str, after: datetime = START, count: int = 5, tz: str = "UTC") -> list[str]:
    schedule = parse_schedule(expression, tz)
    zone = ZoneInfo(tz)
    return [
        moment.astimezone(zone).isoformat() for moment in next_fire_times(schedule, after, count)
    ]


def test_every_minute_is_strictly_after() -> None:
    assert fires("* * * * *", count=2) == [
        "2026-01-01T00:01:00+00:00",
        "2026-01-01T00:02:00+00:00",
    ]


def test_day_of_month_or_day_of_week_when_both_restricted() -> None:
    # crontab(5): "0 0 1,15 * mon" fires on the 1st, the 15th AND every Monday.
    assert fires("0 0 1,15 * mon", count=5) == [
        "2026-01-05T00:00:00+00:00",
        "2026-01-12T00:00:00+00:00",
        "2026-01-15T00:00:00+00:00",
        "2026-01-19T00:00:00+00:00",
        "2026-01-26T00:00:00+00:00",
    ]


def test_a_day_field_starting_with_star_is_not_a_restriction() -> None:
    # The man page: restricted means "doesn't start with *", so */2 with a weekday is AND.
    assert fires("0 0 */2 * mon", count=3) == [
        "2026-01-05T00:00:00+00:00",
        "2026-01-19T00:00:00+00:00",
        "2026-02-09T00:00:00+00:00",
    ]


def test_sunday_is_zero_and_seven() -> None:
    assert (
        fires("0 12 * * 0", count=3)
        == fires("0 12 * * 7", count=3)
        == fires("0 12 * * sun", count=3)
    )
    assert fires("0 12 * * 0", count=1) == ["2026-01-04T12:00:00+00:00"]
    assert fires("0 0 * * 5-7", count=3) == [
        "2026-01-02T00:00:00+00:00",
        "2026-01-03T00:00:00+00:00",
        "2026-01-04T00:00:00+00:00",
    ]


def test_names_are_case_insensitive_and_work_in_ranges() -> None:
    assert fires("0 9 * JAN-Mar Mon-FRI", count=2) == [
        "2026-01-01T09:00:00+00:00",
        "2026-01-02T09:00:00+00:00",
    ]
    assert fires("0 0 1 dec *", count=1) == ["2026-12-01T00:00:00+00:00"]


def test_steps_ranges_and_lists() -> None:
    assert fires("5-59/20 * * * *", count=4) == [
        "2026-01-01T00:05:00+00:00",
        "2026-01-01T00:25:00+00:00",
        "2026-01-01T00:45:00+00:00",
        "2026-01-01T01:05:00+00:00",
    ]
    assert fires("0 8-18/5,23 * * *", count=4) == [
        "2026-01-01T08:00:00+00:00",
        "2026-01-01T13:00:00+00:00",
        "2026-01-01T18:00:00+00:00",
        "2026-01-01T23:00:00+00:00",
    ]


def test_seconds_come_first_in_six_fields() -> None:
    assert fires("*/20 * * * * *", count=3) == [
        "2026-01-01T00:00:20+00:00",
        "2026-01-01T00:00:40+00:00",
        "2026-01-01T00:01:00+00:00",
    ]


@pytest.mark.parametrize(
    ("macro", "line"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@HOURLY", "0 * * * *"),
    ],
)
def test_macros(macro: str, line: str) -> None:
    assert fires(macro, count=3) == fires(line, count=3)


def test_leap_day_fires_only_in_leap_years() -> None:
    assert fires("0 0 29 2 *", count=3) == [
        "2028-02-29T00:00:00+00:00",
        "2032-02-29T00:00:00+00:00",
        "2036-02-29T00:00:00+00:00",
    ]


def test_every_interval_is_anchored_to_the_epoch() -> None:
    schedule = parse_schedule("@every 90s")
    assert isinstance(schedule, IntervalSchedule)
    after = datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert [t.isoformat() for t in next_fire_times(schedule, after, 2)] == [
        "2026-01-01T00:01:30+00:00",
        "2026-01-01T00:03:00+00:00",
    ]
    # The same fire times whoever asks, from wherever: several schedulers agree.
    assert schedule.next_after(after + timedelta(seconds=30)) == schedule.next_after(after)
    assert schedule.expression == "@every 1m30s"


def test_every_with_a_compound_duration() -> None:
    schedule = parse_schedule("@every 1h30m")
    assert isinstance(schedule, IntervalSchedule)
    assert schedule.interval == timedelta(hours=1, minutes=30)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("61 * * * *", "minute: 61 is out of range 0-59"),
        ("* 24 * * *", "hour: 24 is out of range 0-23"),
        ("* * 0 * *", "day of month: 0 is out of range 1-31"),
        ("* * * 13 *", "month: 13 is out of range 1-12"),
        ("* * * * 8", "day of week: 8 is out of range 0-7"),
        ("*/0 * * * *", "step 0 must be at least 1"),
        ("5-1 * * * *", "runs backwards"),
        ("5/15 * * * *", "a step needs a range or *: write 5-59/15 or */15"),
        ("* * * * mon/2", "a step needs a range or *"),
        ("* * * * * * *", "it has 7 fields"),
        ("* * * *", "it has 4 fields"),
        ("", "it has 0 fields"),
        ("* * * foo *", "'foo' is not a number or name"),
        ("* * * * L", "'l' is not a number or name"),
        ("* * ? * *", "is not a number, range, list or step"),
        ("1,,2 * * * *", "is not a number, range, list or step"),
        ("@reboot", "known macros"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("@every 0s", "not a valid interval"),
        ("@every soon", "not a valid interval"),
        ("@every", "not a valid interval"),
    ],
)
def test_invalid_expressions_say_why(expression: str, reason: str) -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        parse_schedule(expression)
    assert reason in str(caught.value)
    assert repr(expression) in str(caught.value) or expression.startswith("@")


def test_unknown_time_zone() -> None:
    with pytest.raises(InvalidScheduleError, match="'Mars/Olympus' is not a known IANA time zone"):
        parse_schedule("* * * * *", "Mars/Olympus")
    with pytest.raises(InvalidScheduleError):
        parse_schedule("* * * * *", "../../etc/passwd")


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_schedule("* * * * *").next_after(datetime(2026, 1, 1))


def test_time_zone_shifts_fire_times() -> None:
    assert fires("0 3 * * *", tz="Europe/Berlin", count=1) == ["2026-01-01T03:00:00+01:00"]
    assert fires("0 3 * * *", tz="America/New_York", count=1) == ["2026-01-01T03:00:00-05:00"]
    assert fires("45 5 * * *", tz="Asia/Kolkata", count=1) == ["2026-01-01T05:45:00+05:30"]


# --- daylight saving: Europe/Berlin changes 2026-03-29 02:00 -> 03:00 and 2026-10-25 03:00 -> 02:00


def test_spring_forward_fixed_time_fires_once_at_the_change() -> None:
    assert fires("30 2 * * *", START.replace(month=3, day=28), 3, "Europe/Berlin") == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",  # 02:30 does not exist: run at the change, not never
        "2026-03-30T02:30:00+02:00",
    ]


def test_spring_forward_fixed_times_inside_the_gap_fire_once_not_twice() -> None:
    # 02:00, 02:15, 02:30, 02:45 all fall into the gap: one run at the change.
    assert fires("0,15,30,45 2 * * *", START.replace(month=3, day=29), 3, "Europe/Berlin") == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:00:00+02:00",
        "2026-03-30T02:15:00+02:00",
    ]


def test_fall_back_fixed_time_fires_once() -> None:
    assert fires("30 2 * * *", START.replace(month=10, day=24), 3, "Europe/Berlin") == [
        "2026-10-24T02:30:00+02:00",
        "2026-10-25T02:30:00+02:00",  # the first 02:30 only
        "2026-10-26T02:30:00+01:00",
    ]


def test_fall_back_fixed_time_asked_during_the_repeat_does_not_fire_again() -> None:
    schedule = parse_schedule("30 2 * * *", "Europe/Berlin")
    # 02:40 in the second pass (CET) = 01:40 UTC: the 02:30 of this day has run already.
    after = datetime(2026, 10, 25, 1, 40, tzinfo=UTC)
    assert schedule.next_after(after) == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)


def test_wildcard_hour_jobs_keep_real_time_across_both_changes() -> None:
    spring = fires("*/30 * * * *", datetime(2026, 3, 29, 0, 10, tzinfo=UTC), 4, "Europe/Berlin")
    assert spring == [
        "2026-03-29T01:30:00+01:00",
        "2026-03-29T03:00:00+02:00",  # 30 minutes later in real time
        "2026-03-29T03:30:00+02:00",
        "2026-03-29T04:00:00+02:00",
    ]
    autumn = fires("*/30 * * * *", datetime(2026, 10, 24, 23, 50, tzinfo=UTC), 5, "Europe/Berlin")
    assert autumn == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",  # the repeated hour runs too: it is real time
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_fire_times_are_strictly_increasing_through_a_whole_year_of_changes() -> None:
    for expression in ("*/7 * * * *", "0 2 * * *", "30 1-3 * * *", "15 */2 * * *"):
        schedule = parse_schedule(expression, "Europe/Berlin")
        times = next_fire_times(schedule, START, 3000)
        assert all(a < b for a, b in itertools.pairwise(times)), expression


def test_a_fixed_daily_job_fires_once_a_day_every_day_of_the_year() -> None:
    for expression in ("30 2 * * *", "0 2 * * *", "59 2 * * *", "0 3 * * *"):
        schedule = parse_schedule(expression, "Europe/Berlin")
        times = next_fire_times(schedule, START - timedelta(seconds=1), 365)
        days = [t.astimezone(ZoneInfo("Europe/Berlin")).date() for t in times]
        assert len(set(days)) == 365, expression
        assert days[0].isoformat() == "2026-01-01"
        assert days[-1].isoformat() == "2026-12-31"


def test_southern_hemisphere_and_half_hour_zones() -> None:
    # Australia/Lord_Howe moves by 30 minutes; Sydney's change is in April and October.
    for zone in ("Australia/Lord_Howe", "Australia/Sydney", "America/Santiago"):
        schedule = parse_schedule("0,30 2 * * *", zone)
        times = next_fire_times(schedule, START, 800)
        assert all(a < b for a, b in itertools.pairwise(times)), zone
        per_day: dict[object, int] = {}
        for moment in times:
            day = moment.astimezone(ZoneInfo(zone)).date()
            per_day[day] = per_day.get(day, 0) + 1
        assert max(per_day.values()) <= 2, zone


def test_cron_schedule_keeps_its_text_and_zone() -> None:
    schedule = parse_schedule("  0   3 * * * ", "Europe/Berlin")
    assert isinstance(schedule, CronSchedule)
    assert schedule.expression == "0 3 * * *"
    assert schedule.timezone == "Europe/Berlin"

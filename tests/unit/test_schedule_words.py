"""The schedule words: `@manual` (and Ofelia's `@triggered`, `@none`), `at:`, `jitter:`,
`run_on_start:`, each as the job file that tries them."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.errors import InvalidSpecError
from orchestrator.schedule import fires_between, next_fire_times
from orchestrator.spec import parse_job
from orchestrator.spec.schedule_words import jitter_delay

START = datetime(2026, 3, 1, tzinfo=UTC)


def job(**fields: object) -> dict[str, object]:
    return {"name": "nightly", "image": "busybox", **fields}


@pytest.mark.parametrize("word", ["@manual", "@triggered", "@none", "@MANUAL"])
def test_a_manual_job_never_fires_by_itself_nor_in_catch_up(word: str) -> None:
    spec = parse_job(job(schedule=word))
    assert spec.schedule == "@manual"
    assert spec.parsed_schedule.next_after(START) is None
    assert fires_between(spec.parsed_schedule, START, START + timedelta(days=3650), 1000) == []


def test_at_fires_once_at_its_instant_and_never_again() -> None:
    spec = parse_job(job(at="2027-01-31T03:00:00+01:00"))
    at = datetime(2027, 1, 31, 2, 0, tzinfo=UTC)
    assert spec.schedule == "@at 2027-01-31T03:00:00+01:00"
    assert next_fire_times(spec.parsed_schedule, START, 5) == [at]
    assert spec.parsed_schedule.next_after(at) is None
    assert parse_job(spec.to_dict()) == spec  # stored and read back, still one-shot


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"at": "2027-01-31T03:00:00"}, "at: '2027-01-31T03:00:00' has no offset"),
        ({"at": "tomorrow"}, "at: 'tomorrow' is not an ISO 8601 date and time"),
        ({"at": "2027-01-31T03:00:00Z", "schedule": "@daily"}, "cannot be combined with sched"),
        ({}, "schedule: is required (or `at:` for a job that runs once)"),
        ({"schedule": "@every 10s", "jitter": "10s"}, "not shorter than the schedule's interv"),
        ({"schedule": "@daily", "jitter": "61m"}, "jitter: '61m' is longer than 1h"),
        ({"schedule": "@daily", "jitter": "0s"}, "jitter: '0s' is not a positive duration"),
        ({"schedule": "@daily", "run_on_start": "yes"}, "run_on_start: must be true or false"),
    ],
)
def test_bad_schedule_words_are_one_line_naming_the_key(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidSpecError) as raised:
        parse_job(job(**fields), source="jobs/n.yaml")
    assert str(raised.value).startswith("jobs/n.yaml: job 'nightly': ")
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_jitter_is_the_same_for_the_same_fire_wherever_it_is_computed() -> None:
    # Two schedulers parse the job on their own: they must agree on every fire's instant
    # (it is the claim key), and the delay must not be random().
    one = parse_job(job(schedule="*/5 * * * *", jitter="2m")).parsed_schedule
    other = parse_job(job(schedule="*/5 * * * *", jitter="2m")).parsed_schedule
    fires = next_fire_times(one, START, 50)
    assert fires == next_fire_times(other, START, 50)
    # START is itself a fire: delayed, it comes after START.
    base = parse_job(job(schedule="*/5 * * * *")).parsed_schedule
    nominal = next_fire_times(base, START - timedelta(microseconds=1), 50)
    delays = [fire - base for fire, base in zip(fires, nominal, strict=True)]
    assert all(timedelta(0) <= delay < timedelta(minutes=2) for delay in delays)
    assert len(set(delays)) > 40  # a delay per fire, not one per job
    assert jitter_delay("nightly", START, timedelta(minutes=2)) == jitter_delay(
        "nightly", START.astimezone(), timedelta(minutes=2)
    )
    assert jitter_delay("nightly", START, timedelta(hours=1)) != jitter_delay(
        "weekly", START, timedelta(hours=1)
    )


def test_a_jittered_fire_is_asked_for_from_any_instant_and_keeps_its_order() -> None:
    # APScheduler asks "next after the previous fire"; catch-up asks "fires in (a, b]";
    # a restart asks "next after now", which may fall between a fire and its delayed time.
    schedule = parse_job(job(schedule="* * * * * *", jitter="1h")).parsed_schedule
    fires = next_fire_times(schedule, START, 120)
    assert fires == sorted(set(fires))
    for earlier, later in itertools.pairwise(fires):
        middle = earlier + (later - earlier) / 2
        assert schedule.next_after(middle) == later
        assert schedule.next_after(earlier - timedelta(microseconds=1)) == earlier
    assert fires_between(schedule, START, fires[9], 1000) == fires[:10]
    one_shot = parse_job(job(at="2027-01-31T03:00:00Z", jitter="30m")).parsed_schedule
    (only,) = next_fire_times(one_shot, START, 3)
    assert one_shot.next_after(only - timedelta(microseconds=1)) == only
    assert one_shot.next_after(only) is None

"""The schedule words of a job beyond its timetable: `at:` (one fire), `jitter:` (a delay
per fire, the same on every scheduler) and `run_on_start:`. Pure: no I/O.

A jittered fire's time is the job's fire time plus a delay derived from a hash of the
job's name and that fire time, never from random(): every scheduler computes the same
instant, and that instant is the fire's claim key, so each fire is still one run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from orchestrator.errors import InvalidInputError, quote
from orchestrator.schedule import (
    AT_PREFIX,
    MANUAL_WORDS,
    IntervalSchedule,
    Schedule,
    parse_instant,
)
from orchestrator.spec.values import _duration, _Problem, _string
from orchestrator.units import format_duration

MAX_JITTER = timedelta(hours=1)
_BITS = 53  # a float holds them exactly: the fraction stays below 1


def jitter_delay(name: str, fire: datetime, jitter: timedelta) -> timedelta:
    """The delay of job `name`'s fire at `fire`: in [0, jitter), the same everywhere."""
    key = f"{name}\n{fire.astimezone(UTC).isoformat()}".encode()
    bits = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") >> (64 - _BITS)
    fraction = bits / 2**_BITS
    return timedelta(microseconds=int(fraction * (jitter // timedelta(microseconds=1))))


@dataclass(frozen=True)
class JitteredSchedule:
    """A schedule whose every fire is delayed by `jitter_delay`, cut short of the next
    fire so that fires keep their order (one delayed fire per fire of the base)."""

    base: Schedule
    jitter: timedelta
    name: str

    @property
    def expression(self) -> str:
        return self.base.expression

    @property
    def timezone(self) -> str:
        return self.base.timezone

    def _delayed(self, fire: datetime) -> datetime:
        following = self.base.next_after(fire)
        room = self.jitter if following is None else min(self.jitter, following - fire)
        return fire + jitter_delay(self.name, fire, room)

    def next_after(self, after: datetime) -> datetime | None:
        # A fire delayed past `after` is the last base fire at or before it, or else the
        # first after it: look back in growing windows for the former.
        window = min(timedelta(seconds=1), self.jitter)
        last: datetime | None = None
        while True:
            found = self.base.next_after(after - window)
            while found is not None and found <= after:
                last, found = found, self.base.next_after(found)
            if last is not None or window >= self.jitter:
                break
            window = min(window * 2, self.jitter)
        if last is not None and (delayed := self._delayed(last)) > after:
            return delayed
        upcoming = self.base.next_after(after)
        return self._delayed(upcoming) if upcoming is not None else None


def jittered(base: Schedule, jitter: timedelta | None, name: str) -> Schedule:
    return base if not jitter else JitteredSchedule(base, jitter, name)


def canonical_schedule(text: str) -> str:
    """`@triggered` and `@none` are stored as the `@manual` they mean."""
    return "@manual" if text.lower() in MANUAL_WORDS else text


def parse_at(value: object) -> datetime:
    text = _string(value, "at")
    try:
        return parse_instant(text)
    except InvalidInputError as error:
        raise _Problem("at", str(error)) from None


def at_schedule(at: datetime) -> str:
    """The schedule text a one-shot job is stored and listed with."""
    return f"{AT_PREFIX}{at.isoformat()}"


def parse_jitter(value: object, schedule: Schedule | None) -> timedelta:
    jitter = _duration(value, "jitter")  # refuses 0s: not a positive duration
    if jitter > MAX_JITTER:
        raise _Problem("jitter", f"{quote(value)} is longer than {format_duration(MAX_JITTER)}")
    if isinstance(schedule, IntervalSchedule) and jitter >= schedule.interval:
        raise _Problem(
            "jitter",
            f"{format_duration(jitter)} is not shorter than the schedule's interval "
            f"({format_duration(schedule.interval)}): a fire would be delayed past the next",
        )
    return jitter

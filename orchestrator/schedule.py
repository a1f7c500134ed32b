"""Schedules: crontab(5) lines and `@every` intervals, in IANA time zones. Pure: no I/O.

A schedule answers one question, `next_after(instant)`: the first fire time strictly
after an aware instant, as an aware UTC datetime (or None when it never fires again).

Cron lines mean what they mean in crontab(5):
- 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first;
- numbers, `*`, lists, ranges, steps (`*/15`, `1-30/5`; `5/15` is refused: crons disagree on it),
  month and weekday names (`jan`, `mon-fri`), day of week 0 and 7 both Sunday;
- when day of month AND day of week are both restricted (neither starts with `*`),
  a day matching EITHER fires; otherwise both must match;
- `@yearly @annually @monthly @weekly @daily @midnight @hourly`.

Two schedules that are no timetable: `@manual` (Ofelia's `@triggered` and `@none` read as
it) never fires by itself; `@at <ISO 8601 instant>` (a job's `at:` key) fires once.

Daylight saving follows Vixie cron: a job tied to fixed hours (neither its minute nor
its hour field starts with `*`) whose wall time falls into a spring-forward gap fires
once, at the instant of the change; in an autumn repeat it fires once, at the first
occurrence. A job whose minute or hour field starts with `*` runs on real time: it
skips the wall times that do not exist and fires again in the repeated hour.
"""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestrator.errors import InvalidQuantityError, InvalidScheduleError, quote
from orchestrator.units import format_duration, parse_duration

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
        start=1,
    )
}
WEEKDAY_NAMES = {
    name: number for number, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])
}
# The longest daylight-saving shift in the tz database is 2 hours; 3 leaves a margin.
_DST_WINDOW = timedelta(hours=3)
# Feb 29 on a Monday can be 28 years away; give up only past that.
_SEARCH_YEARS = 30
_ONE_SECOND = timedelta(seconds=1)
_ITEM = re.compile(r"(?P<start>\*|[0-9a-z]+)(?:-(?P<end>[0-9a-z]+))?(?:/(?P<step>[0-9]+))?")


class Schedule(Protocol):
    """What every schedule offers the rest of the program."""

    @property
    def expression(self) -> str: ...

    @property
    def timezone(self) -> str: ...

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after `after` (aware), in UTC; None if none is left."""
        ...


# Names in the zone database that mean something different from host to host (the
# host's own zone, a compiled-in default, a placeholder) or use leap seconds.
HOST_DEPENDENT_ZONES = ("localtime", "posixrules", "Factory")


def load_timezone(name: str) -> ZoneInfo:
    """The IANA zone `name`, or an InvalidScheduleError naming it."""
    if name in HOST_DEPENDENT_ZONES or name.startswith(("posix/", "right/")):
        raise InvalidScheduleError(
            f"{quote(name)} depends on the host, not the IANA database: name a zone "
            "such as Europe/Berlin or UTC"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidScheduleError(f"{quote(name)} is not a known IANA time zone") from None


# Read as `@manual`: Ofelia's words for a job run only by hand or by another job.
MANUAL_WORDS = ("@manual", "@triggered", "@none")
AT_PREFIX = "@at "


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date and time with its offset (`2027-01-31T03:00:00+01:00`, `...Z`)."""
    try:
        instant = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidScheduleError(
            f"{quote(text)} is not an ISO 8601 date and time (like 2027-01-31T03:00:00+01:00)"
        ) from None
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidScheduleError(
            f"{quote(text)} has no offset: add one (+01:00, Z) so every host reads one instant"
        )
    return instant


# Schedules are immutable values: a definition read again (every `jobs list`, every
# validation followed by `spec.parsed_schedule`) need not be parsed again.
@functools.lru_cache(maxsize=4096)
def parse_schedule(expression: str, timezone: str = "UTC") -> Schedule:
    """Parse a cron line, a cron macro or `@every <duration>`."""
    zone = load_timezone(timezone)
    text = " ".join(expression.split())
    lowered = text.lower()
    if lowered.startswith("@every"):
        rest = text[len("@every") :].strip()
        try:
            interval = parse_duration(rest)
        except InvalidQuantityError:
            raise InvalidScheduleError(
                f"{quote(expression)} is not a valid interval (like '@every 30s' or '@every 1h30m')"
            ) from None
        return IntervalSchedule(interval=interval, timezone=timezone)
    if lowered in MANUAL_WORDS:
        return ManualSchedule(timezone=timezone)
    if lowered.startswith(AT_PREFIX):
        return OnceSchedule(at=parse_instant(text[len(AT_PREFIX) :]), timezone=timezone)
    if lowered.startswith("@"):
        if lowered not in MACROS:
            raise InvalidScheduleError(
                f"{quote(expression)} is not a valid cron expression "
                f"(known macros: {', '.join(sorted(MACROS))}, @every <duration>, @manual)"
            )
        return CronSchedule.parse(MACROS[lowered], zone, timezone, expression=text)
    return CronSchedule.parse(text, zone, timezone)


def next_fire_times(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    """The next `count` fire times strictly after `after` (fewer if the schedule ends)."""
    times: list[datetime] = []
    current = after
    while len(times) < count:
        upcoming = schedule.next_after(current)
        if upcoming is None:
            break
        times.append(upcoming)
        current = upcoming
    return times


def _require_aware(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("schedules need timezone-aware datetimes")
    return instant.astimezone(UTC)


@dataclass(frozen=True)
class IntervalSchedule:
    """`@every <duration>`: fires at anchor + k * interval (by default the Unix epoch).

    An epoch anchor makes every scheduler compute the same fire times for a job,
    which is what lets several schedulers agree on one run per fire.
    """

    interval: timedelta
    timezone: str = "UTC"
    anchor: datetime = EPOCH

    @property
    def expression(self) -> str:
        return f"@every {format_duration(self.interval)}"

    def next_after(self, after: datetime) -> datetime | None:
        after = _require_aware(after)
        step = _microseconds(self.interval)
        elapsed = _microseconds(after - self.anchor)
        k = elapsed // step + 1
        return self.anchor + timedelta(microseconds=k * step)


@dataclass(frozen=True)
class ManualSchedule:
    """`@manual`: never fires by itself (a run by hand, the API or a chain only)."""

    timezone: str = "UTC"

    @property
    def expression(self) -> str:
        return "@manual"

    def next_after(self, after: datetime) -> datetime | None:
        return None


@dataclass(frozen=True)
class OnceSchedule:
    """`@at <instant>`: one fire, at that instant."""

    at: datetime
    timezone: str = "UTC"

    @property
    def expression(self) -> str:
        return f"{AT_PREFIX}{self.at.isoformat()}"

    def next_after(self, after: datetime) -> datetime | None:
        at = self.at.astimezone(UTC)
        return at if at > _require_aware(after) else None


def _microseconds(delta: timedelta) -> int:
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] = field(default_factory=dict)


_SECOND = _Field("second", 0, 59)
_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DAY = _Field("day of month", 1, 31)
_MONTH = _Field("month", 1, 12, MONTH_NAMES)
_WEEKDAY = _Field("day of week", 0, 7, WEEKDAY_NAMES)


def _parse_field(text: str, spec: _Field) -> tuple[int, ...]:
    """The sorted values a cron field allows; raises ValueError with the reason."""
    values: set[int] = set()
    for item in text.lower().split(","):
        match = _ITEM.fullmatch(item)
        if match is None:
            raise ValueError(f"{spec.name}: {quote(item)} is not a number, range, list or step")
        start_text, end_text, step_text = match["start"], match["end"], match["step"]
        if step_text is not None and len(step_text) > 6:
            raise ValueError(f"{spec.name}: step {quote(step_text)} is too large")
        step = int(step_text) if step_text is not None else 1
        if step < 1:
            raise ValueError(f"{spec.name}: step {step} must be at least 1")
        if start_text == "*":
            if end_text is not None:
                raise ValueError(f"{spec.name}: {quote(item)} is not a valid range")
            start, end = spec.low, spec.high
        else:
            start = _parse_value(start_text, spec)
            if end_text is not None:
                end = _parse_value(end_text, spec)
            elif step_text is not None:
                # Vixie cron reads `5/15` as just 5, cronie refuses it, others read
                # 5-max/15: refuse it, so no line means something else than it did.
                raise ValueError(
                    f"{spec.name}: a step needs a range or *: write {start_text}-{spec.high}/"
                    f"{step_text} or */{step_text}"
                )
            else:
                end = start
            if end < start:
                raise ValueError(f"{spec.name}: range {quote(item)} runs backwards")
        values.update(range(start, end + 1, step))
    if spec is _WEEKDAY and 7 in values:
        values.discard(7)
        values.add(0)
    return tuple(sorted(values))


def _parse_value(text: str, spec: _Field) -> int:
    if text.isdigit():
        if not text.isascii() or len(text) > 6:
            raise ValueError(f"{spec.name}: {quote(text)} is not a number or name")
        value = int(text)
    elif text in spec.names:
        value = spec.names[text]
    else:
        raise ValueError(f"{spec.name}: {quote(text)} is not a number or name")
    if not spec.low <= value <= spec.high:
        raise ValueError(f"{spec.name}: {value} is out of range {spec.low}-{spec.high}")
    return value


def _next_in(values: tuple[int, ...], current: int) -> int | None:
    """The smallest allowed value greater than `current`, if any."""
    index = bisect.bisect_right(values, current)
    return values[index] if index < len(values) else None


@dataclass(frozen=True)
class CronSchedule:
    """A crontab(5) line evaluated in one time zone."""

    expression: str
    timezone: str
    zone: ZoneInfo = field(repr=False, compare=False)
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]  # 0 = Sunday
    # crontab(5): a day field starting with `*` does not count as a restriction.
    day_star: bool
    weekday_star: bool
    # Vixie cron's "wildcard job": minute or hour field starts with `*` (see module doc).
    wild: bool

    @classmethod
    def parse(
        cls, text: str, zone: ZoneInfo, timezone: str, expression: str | None = None
    ) -> CronSchedule:
        fields = text.split()
        if len(fields) == 5:
            fields = ["0", *fields]
        elif len(fields) != 6:
            raise InvalidScheduleError(
                f"{quote(text)} is not a valid cron expression "
                f"(it has {len(fields)} fields; 5, or 6 with seconds first)"
            )
        try:
            parsed = [
                _parse_field(text_, spec)
                for text_, spec in zip(
                    fields, (_SECOND, _MINUTE, _HOUR, _DAY, _MONTH, _WEEKDAY), strict=True
                )
            ]
        except ValueError as error:
            raise InvalidScheduleError(
                f"{quote(expression or text)} is not a valid cron expression ({error})"
            ) from None
        schedule = cls(
            expression=expression or text,
            timezone=timezone,
            zone=zone,
            seconds=parsed[0],
            minutes=parsed[1],
            hours=parsed[2],
            days=parsed[3],
            months=parsed[4],
            weekdays=parsed[5],
            day_star=fields[3].startswith("*"),
            weekday_star=fields[5].startswith("*"),
            wild=fields[1].startswith("*") or fields[2].startswith("*"),
        )
        if schedule._next_wall(datetime(2000, 1, 1)) is None:
            raise InvalidScheduleError(f"{quote(expression or text)} never fires (no such date)")
        return schedule

    def day_matches(self, day: date) -> bool:
        day_ok = day.day in self.days
        weekday_ok = (day.weekday() + 1) % 7 in self.weekdays
        if self.day_star or self.weekday_star:
            return day_ok and weekday_ok
        return day_ok or weekday_ok

    def _next_wall(self, wall: datetime) -> datetime | None:
        """The first matching naive wall-clock time at or after `wall`."""
        if wall.microsecond:
            wall = wall.replace(microsecond=0) + _ONE_SECOND
        last_year = wall.year + _SEARCH_YEARS
        while wall.year <= last_year:
            if wall.month not in self.months:
                month = _next_in(self.months, wall.month)
                wall = (
                    datetime(wall.year, month, 1)
                    if month is not None
                    else datetime(wall.year + 1, self.months[0], 1)
                )
                continue
            if not self.day_matches(wall.date()):
                wall = datetime(wall.year, wall.month, wall.day) + timedelta(days=1)
                continue
            if wall.hour not in self.hours:
                hour = _next_in(self.hours, wall.hour)
                wall = (
                    wall.replace(hour=hour, minute=0, second=0)
                    if hour is not None
                    else datetime(wall.year, wall.month, wall.day) + timedelta(days=1)
                )
                continue
            if wall.minute not in self.minutes:
                minute = _next_in(self.minutes, wall.minute)
                wall = (
                    wall.replace(minute=minute, second=0)
                    if minute is not None
                    else wall.replace(minute=0, second=0) + timedelta(hours=1)
                )
                continue
            if wall.second not in self.seconds:
                second = _next_in(self.seconds, wall.second)
                wall = (
                    wall.replace(second=second)
                    if second is not None
                    else wall.replace(second=0) + timedelta(minutes=1)
                )
                continue
            return wall
        return None

    def _instants(self, wall: datetime) -> list[datetime]:
        """The real instants at which the wall time `wall` fires (see the module doc on DST)."""
        first = wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        second = wall.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        if first == second:
            return [first]
        if first < second:  # the wall time happens twice (autumn)
            return [first, second] if self.wild else [first]
        # the wall time does not exist (spring): fold=1 gives an instant before the change
        return [] if self.wild else [self._change_between(second, first)]

    def _change_between(self, before: datetime, after: datetime) -> datetime:
        """The first whole second in (before, after] that has the offset `after` has."""
        target = after.astimezone(self.zone).utcoffset()
        low, high = int(before.timestamp()), int(after.timestamp())
        while high - low > 1:
            middle = (low + high) // 2
            if datetime.fromtimestamp(middle, self.zone).utcoffset() == target:
                high = middle
            else:
                low = middle
        return datetime.fromtimestamp(high, UTC)

    def next_after(self, after: datetime) -> datetime | None:
        after = _require_aware(after)
        start = after.astimezone(self.zone).replace(tzinfo=None) + _ONE_SECOND
        start = start.replace(microsecond=0)
        wall = self._next_wall(start)
        if wall is None:
            return None
        # Fast path: no offset change near `after` nor near the candidate, so the
        # candidate's wall time exists once and no earlier wall time repeats after `after`.
        candidate = wall.replace(tzinfo=self.zone).astimezone(UTC)
        if self._steady_around(after) and self._steady_around(candidate):
            return candidate
        return self._next_after_near_change(after)

    def _steady_around(self, instant: datetime) -> bool:
        before = (instant - _DST_WINDOW).astimezone(self.zone).utcoffset()
        return before == (instant + _DST_WINDOW).astimezone(self.zone).utcoffset()

    def _next_after_near_change(self, after: datetime) -> datetime | None:
        # Around a change, a wall time before `after`'s own can still fire after it (the
        # repeated hour), so scan from earlier and keep the earliest instant past `after`.
        wall = self._next_wall(after.astimezone(self.zone).replace(tzinfo=None) - _DST_WINDOW)
        best: datetime | None = None
        best_wall: datetime | None = None
        while wall is not None:
            if best_wall is not None and wall > best_wall + _DST_WINDOW:
                break
            for instant in self._instants(wall):
                if instant > after and (best is None or instant < best):
                    best, best_wall = instant, wall
            wall = self._next_wall(wall + _ONE_SECOND)
        return best


def fires_between(
    schedule: Schedule, after: datetime, until: datetime, limit: int
) -> list[datetime]:
    """Fire times in (after, until], the latest `limit` of them, oldest first.

    Searches backwards in growing windows, so a long gap (a year of a per-second job)
    costs only what is kept, not every fire in between.
    """
    if until <= after or limit <= 0:
        return []
    for window in _CATCHUP_WINDOWS:
        start = max(after, until - window)
        found: list[datetime] = []
        current = start
        while (upcoming := schedule.next_after(current)) is not None and upcoming <= until:
            found.append(upcoming)
            current = upcoming
            if len(found) > limit:
                found.pop(0)
        if len(found) >= limit or start == after:
            return found
    return found


_CATCHUP_WINDOWS = [
    timedelta(minutes=5),
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(days=32),
    timedelta(days=367),
    timedelta(days=366 * 30),
]

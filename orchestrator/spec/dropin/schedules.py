"""The other tools' timetables in our schedule words, exactly, or refused with the reason.

Ofelia uses robfig/cron v3 (seconds field optional, `@every <Go duration>`, descriptors,
`CRON_TZ=`); deck-chores uses APScheduler 3 triggers: a cron line with its own field order
(year month day week day_of_week hour minute second, padded with `*` on the left and
day_of_week counted from Monday = 0), intervals and one-shot dates.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from fractions import Fraction

from orchestrator.errors import InvalidInputError
from orchestrator.schedule import load_timezone, parse_schedule
from orchestrator.spec.dropin.common import Refused
from orchestrator.units import format_duration

MANUAL_WORDS = ("@manual", "@triggered", "@none")
_GO_UNIT = {
    "ns": Fraction(1, 10**9),
    "us": Fraction(1, 10**6),
    "µs": Fraction(1, 10**6),
    "μs": Fraction(1, 10**6),
    "ms": Fraction(1, 1000),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3600),
}
_GO_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
# robfig's field bounds, for `N/step` (which it reads as N-max/step).
_ROBFIG_MAX = (59, 59, 23, 31, 12, 6)


def go_duration(text: str) -> Fraction:
    """Seconds in a Go duration (`1h30m`, `1.5h`, `300ms`), as time.ParseDuration reads it."""
    rest = text.strip()
    if rest in ("0", ""):
        raise Refused(f"{text!r} is not a positive Go duration")
    total = Fraction(0)
    position = 0
    while position < len(rest):
        match = _GO_PART.match(rest, position)
        if match is None:
            raise Refused(f"{text!r} is not a Go duration (like 90s, 1h30m, 1.5h)")
        total += Fraction(match[1]) * _GO_UNIT[match[2]]
        position = match.end()
    if total <= 0:
        raise Refused(f"{text!r} is not a positive Go duration")
    return total


def whole_seconds(seconds: Fraction, *, round_up: bool = False) -> str:
    """A duration in our words; robfig truncates intervals to the second (at least 1 s)."""
    count = math.ceil(seconds) if round_up else max(1, math.floor(seconds))
    return format_duration(timedelta(seconds=count))


def _checked(expression: str, timezone: str) -> str:
    try:
        parse_schedule(expression, timezone)
    except InvalidInputError as error:
        raise Refused(str(error)) from None
    return expression


def _robfig_field(item_text: str, index: int, other_restricted: bool) -> str:
    items = []
    for item in item_text.split(","):
        item = "*" + item[1:] if item.startswith("?") else item
        value, _, step = item.partition("/")
        if step and "-" not in value and value != "*":
            item = f"{value}-{_ROBFIG_MAX[index]}/{step}"  # robfig: N/step is N-max/step
        elif step and value == "*" and index in (3, 5) and other_restricted and step != "1":
            # robfig counts `*/n` in day-of-month/day-of-week as restricted (day matches
            # EITHER field); our crontab rule counts a leading `*` as unrestricted.
            item = f"{1 if index == 3 else 0}-{_ROBFIG_MAX[index]}/{step}"
        items.append(item)
    return ",".join(items)


def _robfig_restricted(field_text: str) -> bool:
    return not (field_text in ("*", "?") or re.fullmatch(r"[*?]/1", field_text) is not None)


def ofelia_schedule(text: str) -> tuple[str, str | None]:
    """(our schedule, its time zone or None) for an Ofelia `schedule` value."""
    words = text.split()
    timezone = None
    if words and words[0].startswith(("TZ=", "CRON_TZ=")):
        timezone = words.pop(0).partition("=")[2]
        try:
            load_timezone(timezone)
        except InvalidInputError as error:
            raise Refused(str(error)) from None
    if not words:
        raise Refused(f"{text!r} is not a schedule")
    first = words[0].lower()
    if first in MANUAL_WORDS and len(words) == 1:
        return "@manual", timezone
    if first == "@every":
        return f"@every {whole_seconds(go_duration(' '.join(words[1:])))}", timezone
    if first.startswith("@"):
        return _checked(" ".join(words).lower(), timezone or "UTC"), timezone
    if len(words) == 5:
        words.insert(0, "0")
    if len(words) != 6:
        raise Refused(
            f"{text!r} has {len(words)} fields: robfig/cron takes 5 (minute first) "
            "or 6 (seconds first)"
        )
    dom_restricted, dow_restricted = _robfig_restricted(words[3]), _robfig_restricted(words[5])
    fields = [
        _robfig_field(
            word,
            index,
            other_restricted=(dow_restricted if index == 3 else dom_restricted),
        )
        for index, word in enumerate(words)
    ]
    if fields[0] == "0":
        fields = fields[1:]
    return _checked(" ".join(fields), timezone or "UTC"), timezone


# --- deck-chores (APScheduler 3) ---------------------------------------------------------

_APS_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_NAMED_INTERVALS = {
    "weekly": 7 * 86400,
    "daily": 86400,
    "hourly": 3600,
    "every minute": 60,
    "every second": 1,
}
_TIME_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_APS_DATE = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})"
    r"(?:[ T](?P<h>\d{1,2}):(?P<mi>\d{1,2}):(?P<s>\d{1,2})(?:\.(?P<f>\d{1,6}))?)?"
)


def _aps_day(token: str) -> int:
    if token.isdigit() and 0 <= int(token) <= 6:
        return int(token)
    if token.lower() in _APS_DAYS:
        return _APS_DAYS.index(token.lower())
    raise Refused(f"day_of_week {token!r} is not 0-6 (Monday = 0) or mon-sun")


def _aps_weekdays(field_text: str) -> str:
    """An APScheduler day_of_week (Monday = 0) as our field (Sunday = 0, 7 also Sunday)."""
    days: set[int] = set()
    for item in field_text.split(","):
        value, _, step_text = item.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise Refused(f"day_of_week {item!r}: the step must be a positive number")
        if value == "*":
            start, end = 0, 6
        elif "-" in value:
            low, _, high = value.partition("-")
            start, end = _aps_day(low), _aps_day(high)
            if start > end:
                raise Refused(f"day_of_week {item!r}: the range runs backwards")
        else:
            start = end = _aps_day(value)
            if step is not None:
                end = 6
        days.update(range(start, end + 1, step or 1))
    if days == set(range(7)):
        return "*"
    return ",".join(str(day + 1) for day in sorted(days))  # our 1 = Monday ... 7 = Sunday


def deck_chores_cron(text: str, timezone: str) -> str:
    """Our cron line for a deck-chores `cron` value (its own field order)."""
    tokens = text.split()
    if not tokens or len(tokens) > 8:
        raise Refused(f"{text!r} has {len(tokens)} fields: deck-chores takes 1 to 8")
    year, month, day, week, weekday, hour, minute, second = ["*"] * (8 - len(tokens)) + tokens
    if year != "*":
        raise Refused(f"{text!r} names a year ({year}): our cron lines repeat every year")
    if week != "*":
        raise Refused(f"{text!r} names a week of the year ({week}): our cron has no such field")
    if re.search(r"[a-z]", day, re.IGNORECASE):
        raise Refused(f"{text!r}: day {day!r} (last, 1st mon, ...) has no crontab equivalent")
    ours_weekday = _aps_weekdays(weekday)
    if not day.startswith("*") and not ours_weekday.startswith("*"):
        raise Refused(
            f"{text!r} restricts both day and day_of_week: APScheduler fires when BOTH "
            "match, crontab (and we) when EITHER does"
        )
    fields = [second, minute, hour, day, month, ours_weekday]
    if second == "0":
        fields = fields[1:]
    return _checked(" ".join(fields), timezone)


def deck_chores_seconds(text: str) -> int | None:
    """deck-chores' reading of `42s 0.5d`-style text (utils.parse_time_from_string_with_units)."""
    digits, result, ignore = "", 0.0, False
    for char in text:
        if char.isdigit() or char == ".":
            ignore = False
            digits += char
            continue
        if ignore:
            continue
        lowered = char.lower()
        if lowered in _TIME_UNITS and digits:
            try:
                result += _TIME_UNITS[lowered] * float(digits)
            except ValueError:
                return None
            digits, ignore = "", True
        if lowered.isalpha():
            ignore = True
    return int(result)


def deck_chores_interval(text: str) -> str:
    """`@every <duration>` for a deck-chores `interval` value."""
    seconds: int | None
    if text in _NAMED_INTERVALS:
        seconds = _NAMED_INTERVALS[text]
    elif any(char.isalpha() for char in text):
        seconds = deck_chores_seconds(text)
    else:
        parts = text.translate(str.maketrans(".:/", "   ")).split()
        if not parts or len(parts) > 5 or not all(part.isdigit() for part in parts):
            raise Refused(f"{text!r} is not an interval (like '1 hour 30 minutes' or '1:30:00')")
        parts = ["0"] * (5 - len(parts)) + parts
        seconds = sum(int(n) * s for n, s in zip(parts, (604800, 86400, 3600, 60, 1), strict=True))
    if not seconds:
        raise Refused(f"{text!r} is not a positive interval")
    return f"@every {format_duration(timedelta(seconds=seconds))}"


def deck_chores_jitter(text: str) -> str | None:
    """Our `jitter` for deck-chores' (seconds, or text with units); None for none."""
    seconds = deck_chores_seconds(text) if any(c.isalpha() for c in text) else None
    if seconds is None:
        if not text.strip().isdigit():
            raise Refused(f"jitter {text!r} is not a number of seconds")
        seconds = int(text)
    return format_duration(timedelta(seconds=seconds)) if seconds else None


def deck_chores_date(text: str, timezone: str) -> str:
    """Our `at` (ISO 8601 with the offset) for a deck-chores `date` in its time zone."""
    match = _APS_DATE.fullmatch(text.strip())
    if match is None:
        raise Refused(f"date {text!r} is not YYYY-MM-DD [HH:MM:SS]")
    if match["f"] and int(match["f"]):
        raise Refused(f"date {text!r}: fractions of a second are not kept here")
    y, mo, d, h, mi, s = (int(match[k] or 0) for k in ("y", "mo", "d", "h", "mi", "s"))
    try:
        moment = datetime(y, mo, d, h, mi, s, tzinfo=load_timezone(timezone))
    except ValueError as error:
        raise Refused(f"date {text!r}: {error}") from None
    return moment.isoformat()

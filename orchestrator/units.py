"""Durations (`90s`, `15m`, `1h30m`, `2d`) and sizes (`256m`, `1MiB`), parsed and formatted."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from orchestrator.errors import InvalidQuantityError, quote

_DURATION = re.compile(
    r"(?:(?P<w>[0-9]+)w)?(?:(?P<d>[0-9]+)d)?(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?"
)
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
# Far beyond any sane job setting, small enough for timedelta and for every database.
_MAX_SECONDS = 100 * 365 * 86400
# Digits a number read from text may have: more than any bound here needs, far fewer than
# the 4300 beyond which Python's int() refuses (ValueError, not our one-line error).
MAX_DIGITS = 30

# Docker's convention: k, m, g are binary multiples; "mb" and "mib" mean the same.
# The largest size a 64-bit engine or database field holds (8 EiB - 1).
MAX_SIZE = 2**63 - 1
_SIZE = re.compile(r"(?P<n>[0-9]+(?:\.[0-9]+)?)\s*(?P<u>[kmgt]?)(?:i?b)?", re.IGNORECASE)
_SIZE_FACTOR = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_duration(value: object) -> timedelta:
    """Parse `1h30m`-style text, or a whole number of seconds, into a positive timedelta."""
    if isinstance(value, bool):
        raise InvalidQuantityError(f"{quote(value)} is not a duration (like 90s, 15m, 1h30m)")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str):
        text = value.strip().lower()
        match = _DURATION.fullmatch(text)
        if not text or match is None:
            raise InvalidQuantityError(f"{quote(value)} is not a duration (like 90s, 15m, 1h30m)")
        if any(len(n) > MAX_DIGITS for n in match.groups() if n):
            raise InvalidQuantityError(f"{quote(value)} is longer than 100 years")
        seconds = sum(int(n) * _UNIT_SECONDS[unit] for unit, n in match.groupdict().items() if n)
    else:
        raise InvalidQuantityError(f"{quote(value)} is not a duration (like 90s, 15m, 1h30m)")
    if seconds <= 0:
        raise InvalidQuantityError(f"{quote(value)} is not a positive duration")
    if seconds > _MAX_SECONDS:
        raise InvalidQuantityError(f"{quote(value)} is longer than 100 years")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The canonical text of a duration: `parse_duration(format_duration(d)) == d`."""
    seconds = int(value.total_seconds())
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def parse_size(value: object) -> int:
    """Parse `256m`, `1MiB`, `512k` or a whole number of bytes into bytes."""
    if isinstance(value, bool):
        raise InvalidQuantityError(f"{quote(value)} is not a size (like 512k, 256m, 1g)")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (match := _SIZE.fullmatch(value.strip())):
        if len(match["n"]) > MAX_DIGITS:
            raise InvalidQuantityError(f"{quote(value)} has more digits than a size needs")
        # Exact arithmetic: a float would turn 9e400 into inf, and int(inf) fails.
        size = int(Fraction(match["n"]) * _SIZE_FACTOR[match["u"].lower()])
    else:
        raise InvalidQuantityError(f"{quote(value)} is not a size (like 512k, 256m, 1g)")
    if size <= 0:
        raise InvalidQuantityError(f"{quote(value)} is not a positive size")
    if size > MAX_SIZE:
        raise InvalidQuantityError(f"{quote(value)} is larger than any size the engine takes (8e)")
    return size


def format_size(size: int) -> str:
    for unit, factor in (("g", 1024**3), ("m", 1024**2), ("k", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def whole_number(text: str, high: int) -> int | None:
    """`text` as a whole number from 0 to `high`, or None: ASCII digits only (`int()`
    takes `²` and `٣` too, or fails past 4300 digits)."""
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_DIGITS:
        return None
    number = int(text)
    return number if number <= high else None


def parse_moment(value: str, now: datetime) -> datetime:
    """A point in time: ISO 8601 (UTC if it has no offset) or a duration back from `now`
    (`2h`, `7d`). How `runs list --since` and `GET /api/runs?since=` read it."""
    text = value.strip()
    try:
        return now - parse_duration(text)
    except InvalidQuantityError:
        pass
    try:
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first moment there is
        raise InvalidQuantityError(f"{quote(text)} is out of the range of times") from None
    except ValueError:
        if re.fullmatch(r"\d+\s*[a-zA-Z][\w\s]*", text):  # meant as a duration: say why not
            parse_duration(text)
        raise InvalidQuantityError(
            f"{quote(text)} is neither a time (2026-11-01T03:00:00Z) nor a duration (7d)"
        ) from None

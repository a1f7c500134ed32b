"""The time, as a thing passed in: every part that reads the clock takes a `Clock`, so
that tests can hold time still or move it on (STYLE.md) instead of sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The clock of production: now, aware, in UTC."""
    return datetime.now(UTC)

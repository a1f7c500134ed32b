"""Retrying through an outage (a database or engine restarting) with capped backoff."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_DELAY_SECONDS = 15.0


def with_backoff(
    action: Callable[[], T],
    *,
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
    patience_seconds: float,
    what: str,
) -> T:
    """`action()`, retried on `retry_on` errors for up to `patience_seconds`; then the
    last error propagates. Delays double from half a second up to 15 seconds."""
    delay = 0.5
    deadline = time.monotonic() + patience_seconds
    while True:
        try:
            return action()
        except retry_on as error:
            if time.monotonic() > deadline:
                raise
            log.warning("%s: %s; retrying in %.1fs", what, error, delay)
            time.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_SECONDS)

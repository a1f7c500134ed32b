"""Retrying through an outage (a database or engine restarting) with capped backoff."""

from __future__ import annotations

import logging
import random
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
    last error propagates. Delays double from half a second up to 15 seconds, each
    drawn between half and all of that (jitter), so that the runs that failed together
    do not all come back in the same instant."""
    delay = 0.5
    deadline = time.monotonic() + patience_seconds
    while True:
        try:
            return action()
        except retry_on as error:
            if time.monotonic() > deadline:
                raise
            pause = jittered(delay)
            log.warning("%s: %s; retrying in %.1fs", what, error, pause)
            time.sleep(pause)
            delay = min(delay * 2, MAX_DELAY_SECONDS)


def jittered(delay: float) -> float:
    """A pause between half of `delay` and all of it."""
    return delay * (0.5 + random.random() / 2)

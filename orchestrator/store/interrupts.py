"""Ctrl-C and SIGTERM in a foreground command, held back while the main thread is inside a
database unit of work and raised (as KeyboardInterrupt) the moment it leaves it.

Raised inside a driver call, the interrupt can leave the connection in the middle of a
query; the pool then hands that connection to the write that records the run cancelled,
which fails ("can't change 'autocommit' now: connection in transaction status ACTIVE"),
and the run is recorded failed instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_MAIN = threading.main_thread()
# Only the main thread's units of work count: signal handlers run in it alone.
_depth = 0
_pending = False


@contextmanager
def held() -> Iterator[None]:
    """A unit of work that an interrupt waits for (in the main thread)."""
    global _depth, _pending
    if threading.current_thread() is not _MAIN:
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending:
            _pending = False
            raise KeyboardInterrupt


def interrupt(_number: int, _frame: FrameType | None) -> None:
    """A signal handler: KeyboardInterrupt now, or when the unit of work ends."""
    global _pending
    if _depth > 0:
        _pending = True
        return
    raise KeyboardInterrupt

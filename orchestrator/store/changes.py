"""Telling the service that the database may have changed, so that an idle service does
not read it over and over: a generation number that moves on every change seen.

- PostgreSQL: a dedicated connection LISTENs on `orchestrator_changes`; triggers
  (migration 0010) NOTIFY it when a job is added, changed or deleted, a run is queued
  for any scheduler (pending, no owner) or a notification is queued. When that connection
  is lost, the generation moves every `fallback_seconds` (a slow poll) while it is
  reconnected with backoff, and once more when it is back (a NOTIFY may have been missed).
- SQLite: `PRAGMA data_version` on a connection held for it, read every
  `check_seconds`: it moves when any other connection (another process, or another
  connection of ours) commits. A read of it costs microseconds, not a query.
- An in-memory SQLite database (tests) is only ever polled: the generation moves every
  `fallback_seconds`.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from orchestrator.records import DeliveryStatus, RunStatus
from orchestrator.store.models import NotificationRow, RunRow

log = logging.getLogger(__name__)

CHANNEL = "orchestrator_changes"
KEEPALIVE_SECONDS = 15.0


class ChangeFeed:
    """The generation, and the thread that moves it; `wait` blocks until it moves."""

    def __init__(self, fallback_seconds: float = 1.0) -> None:
        self.fallback_seconds = fallback_seconds
        self._changed = threading.Condition()
        self._generation = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # True while changes are heard (LISTEN, data_version), False while polled.
        self.listening = False
        self.lost = 0  # how many times the listening connection was lost

    def generation(self) -> int:
        with self._changed:
            return self._generation

    def bump(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        """The generation, once it is not `seen` any more, or `timeout` passed, or stop()."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._generation != seen or self._stopping.is_set(), max(timeout, 0)
            )
            return self._generation

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="changes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _watch(self) -> None:
        """A poll: what a feed does when it cannot hear changes."""
        self.listening = False
        while not self._stopping.wait(self.fallback_seconds):
            self.bump()


class SQLiteFeed(ChangeFeed):
    def __init__(self, path: str, check_seconds: float, fallback_seconds: float) -> None:
        super().__init__(fallback_seconds)
        self.path = path
        self.check_seconds = check_seconds

    def _watch(self) -> None:
        connection: sqlite3.Connection | None = None
        seen: int | None = None
        while not self._stopping.is_set():
            try:
                if connection is None:
                    connection = sqlite3.connect(self.path, timeout=1, isolation_level=None)
                version = int(connection.execute("PRAGMA data_version").fetchone()[0])
                self.listening = True
            except sqlite3.Error as error:
                log.warning("watching %s for changes: %s (polling)", self.path, error)
                self.listening = False
                if connection is not None:
                    with contextlib.suppress(sqlite3.Error):
                        connection.close()
                connection = None
                self.bump()
                self._stopping.wait(self.fallback_seconds)
                continue
            if version != seen:
                if seen is not None:
                    self.bump()
                seen = version
            self._stopping.wait(self.check_seconds)
        if connection is not None:
            connection.close()


class PostgresFeed(ChangeFeed):
    def __init__(self, url: URL, fallback_seconds: float, connect_timeout: int) -> None:
        super().__init__(fallback_seconds)
        self.url = url
        self.connect_timeout = connect_timeout

    def _connect(self) -> Any:
        import psycopg

        url = self.url
        options: dict[str, Any] = {str(key): str(value) for key, value in url.query.items()}
        connection = psycopg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            dbname=url.database,
            connect_timeout=self.connect_timeout,
            autocommit=True,
            **options,
        )
        try:
            connection.execute(f"LISTEN {CHANNEL}")
        except BaseException:
            connection.close()
            raise
        return connection

    def _watch(self) -> None:
        import psycopg

        delay = self.fallback_seconds
        while not self._stopping.is_set():
            try:
                connection = self._connect()
            except psycopg.Error as error:
                if self.listening or delay == self.fallback_seconds:
                    log.warning("cannot LISTEN for changes: %s (polling)", _first_line(error))
                self.listening = False
                self._poll_for(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = self.fallback_seconds
            self.listening = True
            self.bump()  # what changed while we were not listening
            try:
                self._listen(connection)
            except psycopg.Error as error:
                if not self._stopping.is_set():
                    log.warning("lost the LISTEN connection: %s (polling)", _first_line(error))
            finally:
                self.listening = False
                self.lost += 1
                with contextlib.suppress(Exception):
                    connection.close()
            self.bump()

    def _listen(self, connection: Any) -> None:
        quiet_since = time.monotonic()
        while not self._stopping.is_set():
            # A timeout each second, to see stop(); a keep-alive query now and then finds
            # out a connection the server dropped without a word.
            heard = False
            for _ in connection.notifies(timeout=1.0, stop_after=1):
                heard = True
            if heard:
                # Many changes at once (an apply of 10,000 jobs) wake us once.
                for _ in connection.notifies(timeout=0.01):
                    pass
                self.bump()
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                connection.execute("SELECT 1")
                quiet_since = time.monotonic()

    def _poll_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping.wait(min(self.fallback_seconds, deadline - time.monotonic())):
            self.bump()
            if time.monotonic() >= deadline:
                return


def next_wakeup(session: Session) -> tuple[object, object]:
    """When a queued run becomes due (a retry's due_at) and when the outbox next has a
    notification due or a claim that runs out: times no change is told about."""
    run_due = session.scalar(
        select(func.min(RunRow.due_at)).where(
            RunRow.status == RunStatus.PENDING.value, RunRow.owner.is_(None)
        )
    )
    outbox = session.execute(
        select(
            func.min(NotificationRow.next_attempt_at), func.max(NotificationRow.claimed_until)
        ).where(NotificationRow.status == DeliveryStatus.PENDING.value)
    ).one()
    notification_due = max((moment for moment in outbox if moment is not None), default=None)
    return run_due, notification_due


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def feed_for(
    url: URL,
    in_memory: bool,
    *,
    check_seconds: float,
    fallback_seconds: float,
    connect_timeout: int,
) -> ChangeFeed:
    if url.get_backend_name() == "postgresql":
        return PostgresFeed(url, fallback_seconds, connect_timeout)
    if in_memory or not url.database:
        return ChangeFeed(fallback_seconds)
    return SQLiteFeed(url.database, check_seconds, fallback_seconds)

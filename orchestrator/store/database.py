"""Engine, sessions and the boundary where driver errors become our errors."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
)
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.errors import (
    ConflictError,
    DatabaseError,
    DatabaseUnavailableError,
    InvalidInputError,
    quote,
)
from orchestrator.settings import SQLITE_BUSY_TIMEOUT_MS
from orchestrator.store import interrupts

log = logging.getLogger(__name__)

POSTGRES_CONNECT_TIMEOUT_S = 5


def normalise_url(raw: str) -> URL:
    """Parse a database URL; plain `postgresql://` means the psycopg 3 driver."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise InvalidInputError(
            f"{quote(raw)} is not a database URL (like sqlite:///orchestrator.db)"
        ) from None
    except ValueError as error:  # a port that is not a number, and the like
        raise InvalidInputError(f"the database URL is not valid: {error}") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise InvalidInputError(
            f"database {url.render_as_string(hide_password=True)}: "
            "only sqlite:/// and postgresql:// are supported"
        )
    return url


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, issue BEGIN (see _sqlite_on_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


READ_ONLY_OPTION = "orchestrator_read_only"


def _sqlite_on_begin(connection: Connection) -> None:
    # IMMEDIATE takes the write lock up front. A deferred transaction that reads and
    # then writes can fail at once with "database is locked", busy timeout or not.
    # A read-only unit of work (Database.reading) takes no lock: in WAL mode readers
    # never wait for the writer, nor it for them.
    if connection.get_execution_options().get(READ_ONLY_OPTION):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


# One lock per SQLite file for the writers of this process (see Database._writing); a
# writer waits for it as long as SQLite would for its own lock.
WRITERS_PATIENCE_SECONDS = SQLITE_BUSY_TIMEOUT_MS / 1000
_WRITERS: dict[str, threading.RLock] = {}
_WRITERS_GUARD = threading.Lock()


def _writers_of(path: str) -> threading.RLock:
    key = os.path.realpath(path)
    with _WRITERS_GUARD:
        return _WRITERS.setdefault(key, threading.RLock())


class Database:
    """One database: an engine, a session factory, and the schema check."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.display_url = self.url.render_as_string(hide_password=True)
        options: dict[str, Any] = {}
        if self.is_sqlite:
            options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        else:
            options["connect_args"] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
            options["pool_pre_ping"] = True
        try:
            self.engine: Engine = create_engine(self.url, **options)
        except (NoSuchModuleError, ImportError) as error:
            raise DatabaseUnavailableError(f"database {self.display_url}: {error}") from None
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readers = sessionmaker(
            self.engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
        )
        self._writers = (
            _writers_of(self.url.database or "") if self.is_sqlite and not self.in_memory else None
        )

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def in_memory(self) -> bool:
        """An SQLite database that is gone when the process ends."""
        name = self.url.database or ""
        return self.is_sqlite and (name in ("", ":memory:") or "mode=memory" in str(self.url.query))

    def exists(self) -> bool:
        """False for an SQLite file not made yet (opening it would make it)."""
        if not self.is_sqlite or self.in_memory:
            return True
        return Path(self.url.database or "").exists()

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def translate_errors(self) -> Iterator[None]:
        """Driver errors become DatabaseUnavailableError or DatabaseError, with our URL."""
        try:
            yield
        except DBAPIError as error:
            reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
            if isinstance(error, IntegrityError):
                raise ConflictError(f"database {self.display_url}: {reason}") from error
            if isinstance(error, DataError):  # a value given (a NUL in a name): bad input
                raise InvalidInputError(f"a value the database cannot hold: {reason}") from None
            if error.connection_invalidated or _is_connection_error(error):
                raise DatabaseUnavailableError(
                    f"cannot reach database {self.display_url}: {reason}"
                ) from error
            raise DatabaseError(f"database {self.display_url}: {reason}") from error

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """On an SQLite file, this process's writers take turns on a lock of ours before
        SQLite's. A writer that finds SQLite's lock taken polls for it, asleep for up to
        100 ms between tries, long after the holder is done; one waiting here is woken
        when the holder ends. Writers in other processes still meet at SQLite's lock."""
        if self._writers is None:
            yield
            return
        # Past SQLite's own patience, go on to its lock, and its error.
        acquired = self._writers.acquire(timeout=WRITERS_PATIENCE_SECONDS)
        try:
            yield
        finally:
            if acquired:
                self._writers.release()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back if it raises."""
        with (
            self._writing(),
            interrupts.held(),
            self.translate_errors(),
            self._sessions.begin() as session,
        ):
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A unit of work that only reads. On SQLite it does not hold the write lock, so
        the service's pollers (due runs, due notifications, the jobs' signature) never
        make a launch wait to write; it must not write."""
        with interrupts.held(), self.translate_errors(), self._readers.begin() as session:
            yield session

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with (
            self._writing(),
            interrupts.held(),
            self.translate_errors(),
            self.engine.begin() as connection,
        ):
            yield connection

    def current_revision(self) -> str | None:
        """The Alembic revision the database is at; None for an empty database."""
        with self.connect() as connection:
            has_table = connection.dialect.has_table(connection, "alembic_version")
            if not has_table:
                return None
            row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
            return str(row[0]) if row else None


def _is_connection_error(error: DBAPIError) -> bool:
    name = type(error.orig).__name__ if error.orig is not None else ""
    message = str(error.orig).lower()
    return name in ("OperationalError", "InterfaceError") and any(
        marker in message
        for marker in (
            "unable to open",
            "connection",
            "could not connect",
            "could not translate host",
            "timeout",
            "server closed",
            "terminating",
            "does not exist",
            "authentication",
            "no password",
            "disk i/o",
            "readonly",
            "not a database",
        )
    )


def rowcount(result: object) -> int:
    """Rows an UPDATE or DELETE touched (Session.execute types its result loosely)."""
    count = getattr(result, "rowcount", None)
    return int(count) if count is not None else 0

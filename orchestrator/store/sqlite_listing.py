"""The job listing read through the standard library's sqlite3, for `jobs list`.

Importing SQLAlchemy alone takes 0.45 to 0.7 s on our 2-core hosts, longer than all the
rest of listing 1,000 jobs. The listing is one read, so on a plain SQLite file at the
schema's head the CLI reads it here, the same query as JobRepository.listing. Anything
else (PostgreSQL, a URL with options, a missing file, another revision, any error)
answers None and the caller reads through the store, which also says what is wrong. A
contract test keeps the two readers' answers equal.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from urllib.parse import quote

from orchestrator.records import JobListing
from orchestrator.settings import SQLITE_BUSY_TIMEOUT_MS
from orchestrator.store.migrations import HEAD

PREFIX = "sqlite:///"

# JobRepository.listing, as SQLAlchemy renders it for SQLite.
LISTING_SQL = """
SELECT jobs.name, jobs.enabled, jobs.definition, jobs.revision, jobs.source,
       jobs.created_at, jobs.updated_at,
       (SELECT runs.status FROM runs WHERE runs.job_name = jobs.name
        ORDER BY runs.scheduled_for DESC, runs.id DESC LIMIT 1),
       jobs.paused_at, jobs.paused_by
FROM jobs ORDER BY jobs.name
"""


def sqlite_file(url: str) -> str | None:
    """The file of a plain `sqlite:///PATH` URL (read as SQLAlchemy reads it: relative
    to the working directory unless PATH starts with /); None for any other URL."""
    if not url.startswith(PREFIX) or any(mark in url for mark in "?#%"):
        return None
    path = url.removeprefix(PREFIX)
    return path if path and path != ":memory:" else None


def _utc(stored: str) -> datetime:
    # UTCDateTime keeps naive UTC text in SQLite.
    return datetime.fromisoformat(stored).replace(tzinfo=UTC)


def job_listing(url: str) -> list[JobListing] | None:
    """Every job by name as JobRepository.listing gives it, or None: ask the store."""
    path = sqlite_file(url)
    if path is None:
        return None
    try:
        # mode=rw: never create a file that is not there (the store then says so).
        connection = sqlite3.connect(
            f"file:{quote(path)}?mode=rw",
            uri=True,
            timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
        )
    except sqlite3.Error:
        return None
    try:
        connection.execute("BEGIN")  # one snapshot for the revision and the rows
        revision = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        if revision != [(HEAD,)]:
            return None
        rows = connection.execute(LISTING_SQL).fetchall()
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    return [
        JobListing.from_stored(
            name,
            bool(enabled),
            json.loads(definition),
            revision,
            source,
            _utc(created_at),
            _utc(updated_at),
            status,
            _utc(paused_at) if paused_at else None,
            paused_by,
        )
        for (
            name,
            enabled,
            definition,
            revision,
            source,
            created_at,
            updated_at,
            status,
            paused_at,
            paused_by,
        ) in rows
    ]

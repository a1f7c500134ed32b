"""Ctrl-C or SIGTERM in a foreground run waits for the database write in progress: one
raised inside a driver call left a PostgreSQL connection mid-query, and the write that
recorded the run cancelled then failed on it (the run was recorded failed)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from orchestrator.store import interrupts
from orchestrator.store.database import Database


@pytest.fixture
def handler() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, interrupts.interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_an_interrupt_during_a_write_waits_for_its_end(
    empty_database_url: str, handler: None
) -> None:
    database = Database(empty_database_url)
    try:
        with database.connect() as connection:
            connection.execute(text("CREATE TABLE IF NOT EXISTS marks (n INTEGER)"))
            connection.execute(text("DELETE FROM marks"))
        with pytest.raises(KeyboardInterrupt), database.session() as session:
            session.execute(text("INSERT INTO marks VALUES (1)"))
            os.kill(os.getpid(), signal.SIGTERM)  # its handler runs here, at once
            session.execute(text("INSERT INTO marks VALUES (2)"))
        # The unit of work was done to its end, then interrupted; the connection it used
        # is as good as any (on PostgreSQL the pool hands it out again).
        with database.session() as session:
            assert session.execute(text("SELECT n FROM marks ORDER BY n")).scalars().all() == [
                1,
                2,
            ]
        # Outside a unit of work, at once.
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
        with database.connect() as connection:
            connection.execute(text("DROP TABLE marks"))
    finally:
        database.dispose()

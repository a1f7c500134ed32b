"""The writers of one process take turns on a lock of ours before SQLite's own (whose
waiters poll, asleep up to 100 ms between tries, and so start late)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from orchestrator.store import database as database_module
from orchestrator.store.database import Database


def test_a_writer_waits_for_another_of_this_process_before_it_reaches_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite gives up at once when its lock is taken: a writer that reached it while
    # another one wrote would fail, not wait.
    monkeypatch.setattr(database_module, "SQLITE_BUSY_TIMEOUT_MS", 0)
    url = f"sqlite:///{tmp_path}/writers.db"
    first, second = Database(url), Database(url)  # two of them share the file's lock
    try:
        with first.connect() as connection:
            connection.execute(text("CREATE TABLE marks (who TEXT)"))
        errors: list[BaseException] = []

        def write() -> None:
            try:
                with second.session() as session:
                    session.execute(text("INSERT INTO marks VALUES ('second')"))
            except BaseException as error:  # reported below
                errors.append(error)

        waiter = threading.Thread(target=write)
        with first.session() as session:
            session.execute(text("INSERT INTO marks VALUES ('first')"))
            waiter.start()
            waiter.join(0.5)
            assert waiter.is_alive(), f"the second writer did not wait: {errors}"
        waiter.join(10)
        assert not waiter.is_alive()
        assert errors == []
        with first.reading() as session:
            rows = session.execute(text("SELECT who FROM marks ORDER BY rowid")).scalars()
            assert list(rows) == ["first", "second"]
    finally:
        first.dispose()
        second.dispose()

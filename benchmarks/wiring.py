"""The one place the benchmarks build the package's own objects: a database's store, and a
RunLauncher on it. When those constructors change, this module follows and no benchmark.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from benchmarks.harness import LABEL

if TYPE_CHECKING:
    from orchestrator.runner import RunLauncher
    from orchestrator.store.facade import Store


@contextmanager
def store_at(url: str, *, upgrade: bool = False, empty: bool = False) -> Iterator[Store]:
    """The store on `url`, its connections closed on the way out. `empty` first replaces
    PostgreSQL's public schema (a SQLite file is new anyway); `upgrade` migrates to head."""
    from sqlalchemy import text

    from orchestrator.store import migrations
    from orchestrator.store.database import Database
    from orchestrator.store.facade import Store

    database = Database(url)
    try:
        if empty and not database.is_sqlite:
            with database.connect() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
        if upgrade:
            migrations.upgrade(database)
        yield Store(database)
    finally:
        database.dispose()


@contextmanager
def launcher(store: Store, label: str) -> Iterator[RunLauncher]:
    """A RunLauncher on `store` and the engine of the environment, its containers labelled
    `orchestrator.bench=label`; the engine closed on the way out."""
    from orchestrator.engine import DockerEngine
    from orchestrator.engine.selfcontainer import locate_self
    from orchestrator.runner import LaunchSettings, RunLauncher

    engine = DockerEngine.from_env()
    try:
        yield RunLauncher(
            store,
            engine,
            locate_self(engine, None),
            LaunchSettings(extra_labels=((LABEL, label),)),
        )
    finally:
        engine.close()

"""Alembic environment. The orchestrator passes a live connection; the `alembic` command
line (for developers writing revisions) uses ORCHESTRATOR_DATABASE_URL or alembic.ini."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, create_engine

from orchestrator.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        context.run_migrations()
        return
    from orchestrator.store.database import normalise_url

    url = os.environ.get("ORCHESTRATOR_DATABASE_URL") or config.get_main_option(
        "sqlalchemy.url", "sqlite:///orchestrator.db"
    )
    engine = create_engine(normalise_url(url or "sqlite:///orchestrator.db"))
    with engine.begin() as connection:
        _configure(connection)
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported")
run_migrations_online()

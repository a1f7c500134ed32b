"""Alembic, driven from code, with its scripts found in the installed package or the source tree."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import DatabaseError, SchemaOutOfDateError

if TYPE_CHECKING:
    from alembic.config import Config

    from orchestrator.store.database import Database

# The newest revision in migrations/versions. A test keeps this equal to Alembic's head,
# so checking the schema on every command needs no Alembic import.
HEAD = "0011"


def script_location() -> Path:
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise DatabaseError(f"the Alembic migrations are missing (looked in {package})")


def _config(database: Database) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.attributes["database_url"] = database.url
    return config


def _run(database: Database, command: str, revision: str) -> None:
    from alembic import command as alembic_command

    config = _config(database)
    with database.connect() as connection:
        config.attributes["connection"] = connection
        getattr(alembic_command, command)(config, revision)


def upgrade(database: Database, revision: str = "head") -> None:
    check_schema(database, upgrading=True)
    _run(database, "upgrade", revision)


def check_schema(database: Database, *, upgrading: bool = False) -> None:
    """Refuse to work on a database that is not at the revision this code expects. With
    `upgrading` (the database is about to be migrated, or only its revision is asked),
    refuse only one migrated by a newer orchestrator: we cannot read its schema."""
    revision = database.current_revision()
    if revision == HEAD:
        return
    if revision is not None and revision not in known_revisions():
        raise SchemaOutOfDateError(
            f"database {database.display_url} is at revision {revision}, which this "
            f"orchestrator does not know (its newest is {HEAD}): a newer orchestrator "
            "migrated it; use that one, upgrade this one (or restore a backup)"
        )
    if upgrading:
        return
    if revision is None:
        raise SchemaOutOfDateError(
            f"database {database.display_url} has no schema yet: run 'orchestrator db upgrade'"
        )
    raise SchemaOutOfDateError(
        f"database {database.display_url} is at revision {revision}, this orchestrator "
        f"needs {HEAD}: run 'orchestrator db upgrade'"
    )


def downgrade(database: Database, revision: str) -> None:
    _run(database, "downgrade", revision)


@cache
def known_revisions() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(script_location()))
    return frozenset(script.revision for script in scripts.walk_revisions())


def script_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(script_location())).get_current_head()

"""Migrations build exactly the declared schema, on SQLite and PostgreSQL, and go down and up."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from orchestrator.errors import SchemaOutOfDateError
from orchestrator.store import migrations
from orchestrator.store.database import Database
from orchestrator.store.models import Base


def schema_drift(database: Database) -> list[object]:
    with database.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_head_constant_matches_the_migration_scripts() -> None:
    assert migrations.script_head() == migrations.HEAD


def test_upgrade_from_empty_gives_exactly_the_models(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    assert database.current_revision() is None
    migrations.upgrade(database)
    assert database.current_revision() == migrations.HEAD
    assert schema_drift(database) == []
    database.dispose()


def test_downgrade_to_base_and_up_again(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    migrations.upgrade(database)
    migrations.downgrade(database, "base")
    with database.connect() as connection:
        tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
    assert tables == set()
    assert database.current_revision() is None
    migrations.upgrade(database)
    assert schema_drift(database) == []
    database.dispose()


def test_the_history_indexes_and_the_one_run_per_fire_rule_exist(database: Database) -> None:
    with database.connect() as connection:
        inspector = inspect(connection)
        indexes = {tuple(index["column_names"]) for index in inspector.get_indexes("runs")}
        uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("runs")}
    assert ("job_name", "scheduled_for", "id") in indexes
    assert ("status", "scheduled_for", "id") in indexes
    assert ("finished_at",) in indexes
    assert ("job_name", "scheduled_for", "attempt") in uniques


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: object) -> None:
    database = Database(f"sqlite:///{tmp_path}/wal.db")
    migrations.upgrade(database)
    with database.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    database.dispose()


def test_check_schema_refuses_an_empty_or_old_database(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    with pytest.raises(SchemaOutOfDateError, match="run 'orchestrator db upgrade'"):
        migrations.check_schema(database)
    migrations.upgrade(database)
    migrations.check_schema(database)
    with database.connect() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    with pytest.raises(SchemaOutOfDateError, match="does not know"):
        migrations.check_schema(database)
    database.dispose()


def test_the_history_has_one_head_and_no_branches() -> None:
    """Coming issues each add tables: their revisions must form one line."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(migrations.script_location()))
    assert scripts.get_heads() == [migrations.HEAD]
    assert len(scripts.get_bases()) == 1
    for script in scripts.walk_revisions():
        assert not script.is_branch_point and not script.is_merge_point, script.revision


def test_every_revision_upgrades_and_downgrades_one_step_at_a_time(
    empty_database_url: str,
) -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(migrations.script_location()))
    order = [script.revision for script in reversed(list(scripts.walk_revisions()))]
    database = Database(empty_database_url)
    for revision in order:  # up, one at a time, and each one down and up again
        migrations.upgrade(database, revision)
        assert database.current_revision() == revision
        migrations.downgrade(database, "-1")
        migrations.upgrade(database, revision)
        assert database.current_revision() == revision
    assert schema_drift(database) == []
    for revision in reversed(order[:-1]):
        migrations.downgrade(database, "-1")
        assert database.current_revision() == revision
    migrations.downgrade(database, "-1")
    assert database.current_revision() is None
    database.dispose()

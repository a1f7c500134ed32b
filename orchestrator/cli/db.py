"""`orchestrator db`: schema migrations."""

from __future__ import annotations

import click

from orchestrator.cli.context import AppContext, pass_app
from orchestrator.store import migrations


@click.group()
def db() -> None:
    """Create or upgrade the database schema (Alembic)."""


@db.command()
@pass_app
def upgrade(app: AppContext) -> None:
    """Upgrade the database schema to the newest revision; creates it when empty.

    Example: orchestrator --database-url sqlite:///orchestrator.db db upgrade
    """
    database = app.database(check_schema=False, create=True)
    before = database.current_revision()
    migrations.upgrade(database)
    after = database.current_revision()
    if before == after:
        click.echo(f"database {database.display_url} is already at revision {after} (head)")
    else:
        click.echo(f"database {database.display_url}: {before or 'empty'} -> {after} (head)")


@db.command()
@pass_app
def current(app: AppContext) -> None:
    """Print the schema revision of the database, and whether it is the newest.

    Example: orchestrator db current
    """
    database = app.database(check_schema=False)
    migrations.check_schema(database, upgrading=True)
    revision = database.current_revision()
    if revision is None:
        click.echo("none (empty database: run 'orchestrator db upgrade')")
    elif revision == migrations.HEAD:
        click.echo(f"{revision} (head)")
    else:
        click.echo(f"{revision} (head is {migrations.HEAD}: run 'orchestrator db upgrade')")

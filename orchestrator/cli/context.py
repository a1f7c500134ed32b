"""What every command shares: the settings it was given and a lazily opened database."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from orchestrator.store.database import Database


@dataclass
class AppContext:
    database_url: str
    _database: Database | None = field(default=None, repr=False)
    _checked: bool = False

    def database(self, *, check_schema: bool = True) -> Database:
        """The database; unless told otherwise, refused when its schema is not at head."""
        if self._database is None:
            self._database = Database(self.database_url)
        if check_schema and not self._checked:
            self._database.check_schema()
            self._checked = True
        return self._database

    def close(self) -> None:
        if self._database is not None:
            self._database.dispose()


pass_app = click.make_pass_decorator(AppContext)

"""Shared fixtures: databases (SQLite always, PostgreSQL when configured) and the CLI."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from orchestrator.cli.main import cli
from orchestrator.store import migrations
from orchestrator.store.database import Database, normalise_url

pytest_plugins = ["tests.support.engines", "tests.support.swarm"]

POSTGRES_URL_ENV = "ORCHESTRATOR_TEST_POSTGRES_URL"

# HYPOTHESIS_PROFILE=fuzz for a long hunt; the default keeps the suite quick and steady.
settings.register_profile(
    "default", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "fuzz", max_examples=20_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Every service a test starts inherits this: tests run side by side on one engine, and a
# service reading labels would take the labelled containers of other tests as its jobs.
# The tests of label jobs turn it on, scoped to their own containers by a label filter.
os.environ["ORCHESTRATOR_LABEL_JOBS"] = "off"


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_URL_ENV} must be set in CI (.ci/run sets it)")
        pytest.skip(f"{POSTGRES_URL_ENV} is not set: no PostgreSQL to test against")
    return url


@pytest.fixture(scope="session")
def postgres_database_url(postgres_server_url: str) -> Iterator[str]:
    """A throwaway database on the test server, dropped at the end of the session."""
    server = normalise_url(postgres_server_url)
    name = f"orchestrator_test_{os.getpid()}_{secrets.token_hex(3)}"
    # No pool: a test may restart the server, and teardown needs a live connection.
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_postgres(url: str) -> None:
    engine = create_engine(normalise_url(url))
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'orchestrator.db'}"
    url: str = request.getfixturevalue("postgres_database_url")
    _reset_postgres(url)
    return url


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """A database of each kind, migrated to head."""
    database = Database(empty_database_url)
    migrations.upgrade(database)
    database.dispose()
    return empty_database_url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


class Cli:
    """Runs the real click command tree against one database."""

    def __init__(self, database_url: str, env: dict[str, str] | None = None) -> None:
        self.database_url = database_url
        self.env = env or {}
        self.runner = CliRunner()

    def __call__(self, *args: str, expect: int | None = 0) -> Result:
        result = self.runner.invoke(
            cli, list(args), env={"ORCHESTRATOR_DATABASE_URL": self.database_url, **self.env}
        )
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        if expect is not None:
            assert result.exit_code == expect, (
                f"exit {result.exit_code}, expected {expect}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result


@pytest.fixture
def run_cli(database_url: str) -> Cli:
    return Cli(database_url)


@pytest.fixture
def write_jobs(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write YAML text into a file under tmp_path/jobs and return its path."""
    folder = tmp_path / "jobs"
    folder.mkdir(exist_ok=True)

    def write(name: str, content: str) -> Path:
        path = folder / name
        path.write_text(content)
        return path

    return write


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """In CI no test may skip: every part a test needs is provisioned by .ci/run, so a
    skip there means a missing install step. It is reported as a failure."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if os.environ.get("CI") and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where nothing may skip: {report.longrepr}"
    return None

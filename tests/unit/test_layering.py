"""Import contracts, checked on the source (direct imports, also those inside functions):
arrows point down only (DESIGN.md "Layers"). A new import that breaks one fails here."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "orchestrator"
DRIVERS = ("sqlalchemy", "alembic", "psycopg", "docker", "requests", "apscheduler")
PURE = (
    "spec",
    "schedule",
    "units",
    "records",
    "errors",
    "safety",
    "masking",
    "hostpaths",
    "catchup",
    "ports",
    "tailbuffer",
    "yamlload",
    "settings",
    "labels",
    "overlap",
    "retries",
    "outcomes",
    "ownership",
    "backoff",
    "events",
    "lateness",
    "deadlines",
    "chains",
)
# The store's own parts that hold SQLAlchemy; its users go through the facade.
STORE_INSIDE = (
    "orchestrator.store.jobs",
    "orchestrator.store.runs",
    "orchestrator.store.leases",
    "orchestrator.store.models",
    "orchestrator.store.types",
)


@cache
def modules() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        imports: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imports.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imports.add(node.module)
        found[name] = imports
    return found


def offending(name: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        imported
        for imported in modules()[name]
        if any(imported == f or imported.startswith(f + ".") for f in forbidden)
    )


@pytest.mark.parametrize("module", PURE)
def test_the_pure_core_imports_no_driver_and_nothing_above_it(module: str) -> None:
    above = (
        "orchestrator.store",
        "orchestrator.engine",
        "orchestrator.cli",
        "orchestrator.service",
        "orchestrator.launcher",
        "orchestrator.portleasing",
        "orchestrator.selfcontainer",
        "orchestrator.secretfiles",
    )
    assert offending(f"orchestrator.{module}", DRIVERS + above) == []


def test_only_the_store_imports_sqlalchemy_and_alembic() -> None:
    for name in modules():
        if not name.startswith("orchestrator.store"):
            assert offending(name, ("sqlalchemy", "alembic", "psycopg")) == [], name


def test_only_the_engine_adapter_imports_docker() -> None:
    for name in modules():
        if not name.startswith("orchestrator.engine"):
            assert offending(name, ("docker", "requests")) == [], name


@pytest.mark.parametrize(
    "module",
    [
        "orchestrator.service.scheduler",
        "orchestrator.service.claims",
        "orchestrator.service.adoption",
        "orchestrator.service.timetable",
        "orchestrator.launcher",
        "orchestrator.portleasing",
    ],
)
def test_the_service_and_the_launcher_use_the_store_facade(module: str) -> None:
    assert offending(module, STORE_INSIDE) == []


def test_the_engine_knows_nothing_of_the_store() -> None:
    for name in modules():
        if name.startswith("orchestrator.engine"):
            assert offending(name, ("orchestrator.store",)) == [], name


def test_nothing_imports_the_cli() -> None:
    for name in modules():
        if not name.startswith("orchestrator.cli") and name != "orchestrator.__main__":
            assert offending(name, ("orchestrator.cli",)) == [], name


# What an edge (the CLI now, the HTTP API next) may use of the store: open the database
# and migrate it; and `jobs list` reads an SQLite listing without SQLAlchemy (which the
# use cases import). Everything else goes through the use cases (orchestrator.operations).
EDGE_STORE_ALLOWED = (
    "orchestrator.store.database",
    "orchestrator.store.migrations",
    "orchestrator.store.facade",
    "orchestrator.store.sqlite_listing",
)


def test_the_edges_go_through_the_use_cases() -> None:
    edges = [
        name for name in modules() if name.startswith(("orchestrator.cli", "orchestrator.api"))
    ]
    assert edges
    for name in edges:
        store_parts = [
            imported
            for imported in offending(name, ("orchestrator.store",))
            if imported not in EDGE_STORE_ALLOWED and imported != "orchestrator.store"
        ]
        assert store_parts == [], name
        assert offending(name, STORE_INSIDE) == [], name


def test_the_use_cases_know_no_edge_and_no_driver() -> None:
    for name in modules():
        if name.startswith("orchestrator.operations"):
            assert offending(name, (*DRIVERS, "orchestrator.cli", "orchestrator.api")) == [], name
            assert offending(name, STORE_INSIDE) == [], name

"""Import contracts, checked on the source (direct imports, also those inside functions):
arrows point down only (DESIGN.md "Layers"). A new import that breaks one fails here."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "orchestrator"
DRIVERS = ("sqlalchemy", "alembic", "psycopg", "docker", "requests", "apscheduler")
# What no module of the pure core may import: the drivers, and whatever makes threads,
# sockets, processes, signals or HTTP requests, or talks to a terminal or a web client.
IMPURE = (
    *DRIVERS,
    "threading",
    "_thread",
    "socket",
    "ssl",
    "selectors",
    "asyncio",
    "concurrent",
    "multiprocessing",
    "subprocess",
    "signal",
    "urllib",
    "http",
    "apprise",
    "click",
    "rich",
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "prometheus_client",
)
# The pure core is a directory rule, not a list of names: every module directly under
# orchestrator/ (the package's vocabulary) and every module of these subpackages.
PURE_PACKAGES = ("spec", "policies")
ROOT_LIMIT = 20


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(
        ".__init__"
    )


def pure_modules() -> list[str]:
    """The pure core, found by where a module is. `__main__` is the entry point: it runs
    the CLI, so it is not part of the vocabulary."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        folder = path.parent
        at_root = folder == PACKAGE and path.name != "__main__.py"
        # spec/ and policies/ with everything below them (spec/dropin/ too).
        parts = folder.relative_to(PACKAGE).parts
        in_pure_package = bool(parts) and parts[0] in PURE_PACKAGES
        if at_root or in_pure_package:
            found.append(module_name(path))
    return found


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


def test_the_pure_core_is_found_by_its_folders() -> None:
    pure = pure_modules()
    for name in (
        "orchestrator.schedule",
        "orchestrator.spec.fields",
        "orchestrator.policies.safety",
    ):
        assert name in pure
    for name in (
        "orchestrator.runner.launcher",
        "orchestrator.store.facade",
        "orchestrator.__main__",
    ):
        assert name not in pure


@pytest.mark.parametrize("module", pure_modules())
def test_the_pure_core_imports_no_driver_no_io_and_nothing_above_it(module: str) -> None:
    assert offending(module, IMPURE) == []
    # Of this package, only other pure modules (`from orchestrator import x` included).
    pure = set(pure_modules())
    assert sorted(import_graph()[module] - pure) == []


def test_the_package_root_holds_only_its_vocabulary() -> None:
    root = [path.name for path in PACKAGE.glob("*.py")]
    assert len(root) <= ROOT_LIMIT, sorted(root)


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
        "orchestrator.runner.launcher",
        "orchestrator.runner.port_leaser",
        "orchestrator.runner.starting",
        "orchestrator.runner.heartbeats",
    ],
)
def test_the_service_and_the_launcher_use_the_store_facade(module: str) -> None:
    assert offending(module, STORE_INSIDE) == []


def test_the_runner_knows_nothing_above_it() -> None:
    runner = [name for name in modules() if name.startswith("orchestrator.runner")]
    assert "orchestrator.runner.launcher" in runner
    above = ("orchestrator.service", "orchestrator.operations", "orchestrator.api")
    for name in runner:
        assert offending(name, above) == [], name
    # The container's description is a pure function: no store, no engine calls.
    assert offending("orchestrator.runner.container", ("orchestrator.store", "docker")) == []


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
    # Ctrl-C held back while the main thread is inside a unit of work (`jobs run`).
    "orchestrator.store.interrupts",
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


@cache
def import_graph() -> dict[str, set[str]]:
    """Each module of the package -> the modules of the package it imports anywhere in it
    (lazy imports inside functions count: they close a circle just the same). An import of
    `orchestrator.x.y`, or of `y` from `orchestrator.x`, is an edge to the module x.y only,
    not to the packages above it that Python loads first."""
    paths = {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(
            ".__init__"
        ): path
        for path in PACKAGE.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{parent}.{base}" if base else parent
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.add(submodule if submodule in paths else base)
        graph[name] = {target for target in targets if target in paths and target != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_circle() -> None:
    graph = import_graph()
    assert "orchestrator.api.pages" in graph["orchestrator.api.app"]
    assert circles(graph) == []


def test_the_circle_finder_finds_a_lazy_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]

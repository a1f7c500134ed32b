"""The manual stays honest: every page linked from the README, every relative link
leading somewhere, every setting the CLI declares and every benchmark floor documented."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CONTRIBUTING = ROOT / "CONTRIBUTING.md"
DOCS = ROOT / "docs"
README_LIMIT = 12 * 1024

# [text](target) and ![alt](target); a target ends at whitespace or ")" (a title may follow).
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_FENCE = re.compile(r"^(```|~~~)")


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def prose(path: Path) -> str:
    """The text outside fenced code blocks (a link in a code block is not a link)."""
    kept, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
        elif not fenced:
            kept.append(line)
    return "\n".join(kept)


def links(path: Path) -> list[str]:
    # Inline code is not a link either: `[x](y)` in backticks is an example.
    return _LINK.findall(re.sub(r"`[^`\n]*`", "", prose(path)))


def is_relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) and not target.startswith(
        "#"
    )


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped,
    spaces as hyphens, a repeated heading numbered."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose(path).splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def test_the_readme_links_every_page_of_the_manual() -> None:
    assert pages(), "docs/ has no pages"
    linked = {
        (README.parent / target.split("#", 1)[0]).resolve()
        for target in links(README)
        if is_relative(target)
    }
    unlinked = [page.relative_to(ROOT).as_posix() for page in pages() if page not in linked]
    assert unlinked == [], f"pages the README does not link: {unlinked}"


def test_the_readme_fits_in_twelve_kilobytes() -> None:
    size = len(README.read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes: move a topic to docs/"


def test_every_relative_link_leads_to_a_file_and_heading_that_exist() -> None:
    broken = []
    for source in [README, CONTRIBUTING, *pages()]:
        for target in links(source):
            if not is_relative(target):
                if target.startswith("#") and target[1:] not in anchors(source):
                    broken.append(f"{source.relative_to(ROOT)}: {target}")
                continue
            file, _, anchor = target.partition("#")
            where = (source.parent / file).resolve()
            if not where.exists():
                broken.append(f"{source.relative_to(ROOT)}: {target}")
            elif anchor and where.suffix == ".md" and anchor not in anchors(where):
                broken.append(f"{source.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == [], broken


def declared_variables() -> dict[str, str]:
    """Every environment variable a command of the CLI reads, with the first command
    that declares it (walked from the group, lazily loaded subcommands included)."""
    from orchestrator.cli.main import cli

    found: dict[str, str] = {}

    def walk(command: click.Command, path: str, context: click.Context) -> None:
        for parameter in command.params:
            names = parameter.envvar
            for name in [names] if isinstance(names, str) else list(names or ()):
                found.setdefault(name, f"{path} --{parameter.name}")
        if isinstance(command, click.Group):
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                assert sub is not None, name
                walk(sub, f"{path} {name}", click.Context(sub, parent=context, info_name=name))

    walk(cli, "orchestrator", click.Context(cli, info_name="orchestrator"))
    return found


def table_settings() -> Iterator[str]:
    """The variables of a settings table in orchestrator.settings, once there is one
    (rows with an `env` attribute); nothing before."""
    settings = importlib.import_module("orchestrator.settings")
    for value in vars(settings).values():
        if isinstance(value, (list, tuple)):
            for row in value:
                env = getattr(row, "env", None)
                if isinstance(env, str) and env:
                    yield env


def test_every_variable_the_cli_declares_is_in_the_settings_table() -> None:
    variables = declared_variables()
    assert "ORCHESTRATOR_DATABASE_URL" in variables and "ORCHESTRATOR_HTTP" in variables
    for env in table_settings():
        variables.setdefault(env, "orchestrator.settings")
    rows = [line for line in (DOCS / "cli.md").read_text().splitlines() if line.startswith("|")]
    missing = {
        name: where
        for name, where in variables.items()
        if not any(f"`{name}`" in row for row in rows)
    }
    assert missing == {}, f"settings missing from the table in docs/cli.md: {missing}"


def floor_keys() -> list[str]:
    """The keys of the benchmark floors, from whichever module of benchmarks/ defines
    FLOORS (a dict by key, or rows whose first item is the key)."""
    defining = [
        path
        for path in sorted((ROOT / "benchmarks").rglob("*.py"))
        if re.search(r"^FLOORS\b[^=\n]*=", path.read_text(encoding="utf-8"), re.MULTILINE)
    ]
    assert defining, "no module of benchmarks/ defines FLOORS"
    keys: list[str] = []
    for path in defining:
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        floors = importlib.import_module(module).FLOORS
        keys += list(floors) if isinstance(floors, dict) else [row[0] for row in floors]
    return keys


def benchmark_table() -> list[str]:
    section = re.search(r"^## Benchmarks\n(.*?)(?=^#{1,2} |\Z)", prose(CONTRIBUTING), re.M | re.S)
    assert section, "CONTRIBUTING.md has no '## Benchmarks' section"
    return [line for line in section.group(1).splitlines() if line.startswith("|")]


def test_every_benchmark_floor_is_in_the_table_of_contributing() -> None:
    keys = floor_keys()
    assert "dispatch.ratio" in keys
    rows = benchmark_table()
    missing = [key for key in keys if not any(f"`{key}`" in row for row in rows)]
    assert missing == [], f"floors missing from CONTRIBUTING.md's benchmark table: {missing}"


# `tests/x/test_y.py::test_z`, or `::test_z` / `test_y.py::test_z` after a full path.
_TEST_REF = re.compile(r"`((?:tests/[\w/]+/)?test_\w+\.py)?(?:::(test_\w+))?[^`]*`")


def security_test_references() -> Iterator[tuple[str, str | None]]:
    """(file, test) for every test SECURITY.md names: a bare file name or `::name` means
    the file named last by its full path (or, for a bare name, with that base name)."""
    text = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    last: str | None = None
    by_name: dict[str, str] = {}
    for match in _TEST_REF.finditer(text):
        path, name = match.group(1), match.group(2)
        if path is None and name is None:
            continue
        if path is not None and "/" in path:
            last = by_name[Path(path).name] = path
        elif path is not None:
            last = by_name.get(path, path)
        assert last is not None, f"SECURITY.md names {match.group(0)} before any test file"
        yield last, name


def test_every_test_security_md_names_exists() -> None:
    """A promise's proof is a test that exists: renaming one must update the table."""
    missing = []
    for path, name in security_test_references():
        file = ROOT / path
        if not file.is_file():
            missing.append(path)
        elif name is not None and not re.search(rf"def {name}\b", file.read_text(encoding="utf-8")):
            missing.append(f"{path}::{name}")
    assert missing == [], f"SECURITY.md names tests that do not exist: {missing}"

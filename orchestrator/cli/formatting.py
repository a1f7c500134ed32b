"""Output helpers shared by the commands: JSON, tables, times."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import click

T = TypeVar("T")

# C0 controls but tab, newline and carriage return; DEL; C1 controls as UTF-8 encodes
# them (0x9b is CSI). Escape sequences from a job could retitle the operator's terminal,
# rewrite what is on screen or, through OSC 52, its clipboard.
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\xc2[\x80-\x9f]")


def terminal_safe(data: bytes) -> bytes:
    """A job's output as it may reach a terminal: control bytes shown as \\xNN."""
    return _CONTROL.sub(_escaped, data)


def _escaped(match: re.Match[bytes]) -> bytes:
    return b"".join(b"\\x%02x" % byte for byte in match[0])


def human_time(value: datetime | None) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if value is not None else "-"


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def emit_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*("-" if cell is None else str(cell) for cell in row))
    console = Console(soft_wrap=True)
    if not console.is_terminal:
        # Piped output: never fold cells to an assumed 80 columns.
        console = Console(soft_wrap=True, width=10_000)
    console.print(table)


def emit_listing(
    items: Sequence[T],
    as_json: bool,
    *,
    shape: Callable[[T], Any],
    empty: str,
    headers: Sequence[str],
    row: Callable[[T], Sequence[object]],
) -> None:
    """A listing command's output: each item's JSON shape, or a table with a row each
    (`empty` said instead when there is none)."""
    if as_json:
        emit_json([shape(item) for item in items])
    elif not items:
        click.echo(empty)
    else:
        emit_table(headers, [row(item) for item in items])

"""Output helpers shared by the commands: JSON, tables, times."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click

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

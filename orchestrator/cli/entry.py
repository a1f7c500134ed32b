"""The `orchestrator` executable's first step.

`orchestrator --help` is answered from HELP_TEXT (click's own rendering of the top-level
help, kept in `top_help.py`) without importing click: importing click alone takes 4 to
7 times as long as the bare interpreter's start-up on our 2-core hosts. Everything else,
and the help on a terminal narrower than click's 80 columns, goes to click.
"""

from __future__ import annotations

import os
import sys

# click wraps help to min(terminal columns, 80) - 2; from 80 columns on, the text is fixed.
HELP_COLUMNS = 80


def terminal_columns() -> int:
    """The terminal's width as shutil.get_terminal_size (which click asks) finds it,
    without importing shutil: COLUMNS, then the terminal of stdout, then 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


def main() -> None:
    if sys.argv[1:] in (["--help"], ["-h"]) and terminal_columns() >= HELP_COLUMNS:
        from orchestrator.cli.top_help import HELP_TEXT

        sys.stdout.write(HELP_TEXT)
        sys.stdout.flush()
        return
    from orchestrator.cli.main import main as click_main

    click_main()


if __name__ == "__main__":  # pragma: no cover
    main()

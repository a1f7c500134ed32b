"""Write orchestrator/cli/top_help.py: `orchestrator --help` as click renders it on a
terminal of 80 columns or more, which the executable prints without importing click
(orchestrator.cli.entry). Run it after changing a top-level option or a line of
SUBCOMMANDS; tests/component/cli/test_errors_and_help.py says when."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "orchestrator" / "cli" / "top_help.py"
# click's own help, past the entry's shortcut.
CLICK_HELP = "from orchestrator.cli.main import main; main()"


def click_help(columns: int = 80) -> str:
    """The top-level help as click prints it on a terminal `columns` wide."""
    return subprocess.run(
        [sys.executable, "-c", CLICK_HELP, "--help"],
        env={**os.environ, "COLUMNS": str(columns)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def module_text() -> str:
    lines = "".join(f"    {line!r}\n" for line in click_help().splitlines(keepends=True))
    return (
        '"""`orchestrator --help`, as click renders it at 80 columns or more. Written\n'
        "by scripts/write_top_help.py (a test compares it with click's rendering); do not\n"
        'edit."""\n'
        f"\nHELP_TEXT = (\n{lines})\n"
    )


if __name__ == "__main__":
    TARGET.write_text(module_text())
    subprocess.run([sys.executable, "-m", "ruff", "format", "-q", str(TARGET)], check=False)
    print(f"wrote {TARGET}")

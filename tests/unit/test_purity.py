"""The pure core imports neither SQLAlchemy nor docker (STYLE.md), so its tests need no I/O:
checked by importing every module of it (the same directory rule as test_layering.py) in a
fresh interpreter and looking at what got loaded."""

from __future__ import annotations

import subprocess
import sys

from tests.unit.test_layering import pure_modules

PURE = tuple(pure_modules())
HEAVY = ("sqlalchemy", "docker", "alembic", "apscheduler", "requests", "apprise", "psycopg")


def test_pure_core_imports_no_database_or_engine_library() -> None:
    code = (
        f"import sys\nimport {', '.join(PURE)}\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"

"""The CLI's start-up: `orchestrator --help` beside the bare interpreter's start-up and
`import click`; `jobs list --json` of `jobs` jobs beside RAW_LIST; medians of `repeat`,
interleaved.

    .venv/bin/python -m benchmarks.cli [--repeat 5] [--jobs 1000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import orchestrator, scratch_env
from benchmarks.jobs import write_definitions

# The floor of `jobs list --json` for any program that keeps its jobs through SQLAlchemy's
# ORM: the interpreter, SQLAlchemy and its ORM imported, the rows read in one query and
# printed as JSON; nothing of ours.
RAW_LIST = """
import json, sys
import sqlalchemy
from sqlalchemy.orm import Session
with Session(sqlalchemy.create_engine(sys.argv[1])) as session:
    rows = session.execute(sqlalchemy.text("SELECT name, definition, enabled FROM jobs")).all()
print(json.dumps([{"name": n, "job": json.loads(d), "enabled": bool(e)} for n, d, e in rows]))
"""


def _timed(args: list[str], env: dict[str, str], cwd: str) -> float:
    started = time.perf_counter()
    subprocess.run(args, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def cli(repeat: int, jobs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        env = scratch_env(scratch)
        folder = Path(scratch) / "jobs"
        folder.mkdir()
        write_definitions(folder, jobs)
        orchestrator(env, scratch, "db", "upgrade")
        orchestrator(env, scratch, "jobs", "apply", str(folder))
        bare, click, helped, listed, raw = [], [], [], [], []
        ours = [sys.executable, "-m", "orchestrator"]
        url = env["ORCHESTRATOR_DATABASE_URL"]
        for _ in range(repeat):  # interleaved
            bare.append(_timed([sys.executable, "-c", "pass"], env, scratch))
            click.append(_timed([sys.executable, "-c", "import click"], env, scratch))
            helped.append(_timed([*ours, "--help"], env, scratch))
            listed.append(_timed([*ours, "jobs", "list", "--json"], env, scratch))
            raw.append(_timed([sys.executable, "-c", RAW_LIST, url], env, scratch))
    median = statistics.median
    return {
        "python_s": round(median(bare), 3),
        "import_click_s": round(median(click), 3),
        "help_s": round(median(helped), 3),
        "help_ratio": round(median(helped) / median(bare), 2),
        "help_click_ratio": round(median(helped) / median(click), 2),
        "list_1000_s": round(median(listed), 3),
        "list_raw_s": round(median(raw), 3),
        "list_ratio": round(median(listed) / median(raw), 2),
        "jobs": jobs,
    }


def run(quick: bool) -> dict[str, Any]:
    return cli(3 if quick else 5, 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1000)
    options = parser.parse_args()
    print(json.dumps(cli(options.repeat, options.jobs), indent=2))


if __name__ == "__main__":
    main()

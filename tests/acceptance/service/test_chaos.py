"""The chaos soak (benchmarks/chaos.py), two minutes of it in every CI run: three
schedulers on one PostgreSQL under SIGKILLs, a SIGSTOP past --adopt-after, a PostgreSQL
restart, an engine restart and a job container killed from outside; checked from the
engine's own events and the database. It restarts the engine: it belongs to the serial
part of the suite, as every test here does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.serial]
ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.timeout(900)  # two minutes of faults, the drain, the sweep, the checks
def test_two_minutes_of_chaos_break_no_invariant(tmp_path: Path) -> None:
    figures = tmp_path / "chaos.json"
    soak = subprocess.run(
        [sys.executable, "-m", "benchmarks.chaos", "--minutes", "2", "--json", str(figures)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert figures.exists(), soak.stdout[-5000:] + soak.stderr[-5000:]
    result = json.loads(figures.read_text())
    assert result["violations"] == [], soak.stdout[-8000:]
    assert soak.returncode == 0, soak.stderr[-3000:]
    # Every kind of fault was injected, and the checks had something to check.
    assert set(result["faults"]) == {
        "kill_scheduler",
        "freeze_scheduler",
        "restart_postgres",
        "restart_engine",
        "kill_container",
    }
    assert result["checked"]["runs with a container started"] >= 100
    assert result["checked"]["statuses checked against the engine"] >= 100

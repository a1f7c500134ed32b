"""The built wheel works on its own: console script, and migrations from package data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.store.migrations import HEAD

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_installed_wheel_migrates_a_database_outside_the_source_tree(tmp_path: Path) -> None:
    wheels, site, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("orchestrator-*.whl")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (site / "orchestrator" / "migrations" / "env.py").is_file()
    assert list((site / "orchestrator" / "migrations" / "versions").glob("0001_*.py"))
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "ORCHESTRATOR_DATABASE_URL": f"sqlite:///{elsewhere / 'fresh.db'}",
    }

    def run(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, str(site / "bin" / "orchestrator"), *args],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    located = subprocess.run(
        [sys.executable, "-c", "import orchestrator; print(orchestrator.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert located.startswith(str(site)), located
    assert f"-> {HEAD} (head)" in run("db", "upgrade")
    assert run("db", "current").strip() == f"{HEAD} (head)"
    assert "4 created" in run("jobs", "apply", str(ROOT / "jobs"))

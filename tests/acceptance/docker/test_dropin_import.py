"""An Ofelia INI job imported by the real executable runs on the real engine with
Ofelia's meanings (its environment lines, root as the default user)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.engines import JOB_IMAGE

# docs/jobs.md of mcuadros/ofelia, the job-run INI example, on the local test image
# (pull = false: Ofelia's own option, as the image is not in a registry).
INI = f"""
[job-run "print-write-date"]
schedule = @every 5s
image = {JOB_IMAGE}
pull = false
command = sh -c 'echo $FOO $BAZ && id -u'
environment = FOO=bar
environment = BAZ=qux
"""


def _orchestrator(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_an_imported_ofelia_job_runs_as_root_with_its_environment(
    database_url: str, test_label: dict[str, str], tmp_path: Path, docker_client: Any
) -> None:
    ((key, value),) = test_label.items()
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
        "ORCHESTRATOR_DATABASE_URL": database_url,
        "ORCHESTRATOR_CONTAINER_LABELS": f"{key}={value}",
    }
    ini = tmp_path / "ofelia.ini"
    ini.write_text(INI)
    applied = _orchestrator(env, "jobs", "import", "ofelia", str(ini), "--apply", "--strict")
    assert applied.returncode == 0, applied.stderr
    assert "created print-write-date" in applied.stdout
    ran = _orchestrator(env, "jobs", "run", "print-write-date")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "bar qux\n0\n"
    assert docker_client.containers.list(all=True, filters={"label": f"{key}={value}"}) == []

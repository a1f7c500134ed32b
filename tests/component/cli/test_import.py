"""`orchestrator jobs import` through the real executable, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# docs/jobs.md of mcuadros/ofelia: the job-run and job-local INI examples, and a [global]
# slack logger whose webhook must never be printed.
INI = """
[global]
slack-webhook = https://hooks.slack.com/services/T000/B000/very-secret-token
slack-only-on-error = true

[job-run "print-write-date"]
schedule = @every 5s
image = alpine:latest
command = sh -c 'date | tee -a /tmp/test/date'
environment = FOO=bar
environment = BAZ=qux

[job-local "create-file"]
schedule = @every 15s
command = touch test.txt
dir = /tmp/
"""


def _orchestrator(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ORCHESTRATOR_DATABASE_URL": database_url}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[3])
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_import_prints_our_yaml_names_what_it_drops_and_strict_refuses(
    database_url: str, tmp_path: Path
) -> None:
    ini = tmp_path / "ofelia.ini"
    ini.write_text(INI)
    printed = _orchestrator(database_url, "jobs", "import", "ofelia", str(ini))
    assert printed.returncode == 0, printed.stderr
    assert "name: print-write-date" in printed.stdout
    assert "create-file" not in printed.stdout
    assert 'warning: ofelia: job-local "create-file": refused: job-local runs commands' in (
        printed.stderr
    )
    assert "very-secret-token" not in printed.stdout + printed.stderr
    # what it printed is a job file we accept as it is
    out = tmp_path / "jobs.yaml"
    out.write_text(printed.stdout)
    valid = _orchestrator(database_url, "jobs", "validate", str(out))
    assert valid.returncode == 0, valid.stderr

    strict = _orchestrator(database_url, "jobs", "import", "ofelia", str(ini), "--strict")
    assert strict.returncode == 2
    assert strict.stdout == ""
    assert f"{ini}: 2 item(s) not carried over (--strict)" in strict.stderr
    listed = _orchestrator(database_url, "jobs", "list", "--json")
    assert json.loads(listed.stdout) == []  # --strict applied nothing


def test_import_apply_stores_the_jobs(database_url: str, tmp_path: Path) -> None:
    ini = tmp_path / "ofelia.ini"
    ini.write_text(INI)
    applied = _orchestrator(database_url, "jobs", "import", "ofelia", str(ini), "--apply")
    assert applied.returncode == 0, applied.stderr
    assert "created print-write-date" in applied.stdout
    shown = json.loads(
        _orchestrator(database_url, "jobs", "show", "print-write-date", "--json").stdout
    )
    definition = shown["definition"]
    assert definition["concurrency"] == "allow"  # Ofelia's default: runs may overlap
    assert definition["user"] == "root"


def test_import_deck_chores_compose(database_url: str, tmp_path: Path) -> None:
    compose = tmp_path / "shop" / "compose.yaml"
    compose.parent.mkdir()
    # deck-chores docs/usage.rst, "Job definitions", as a compose service.
    compose.write_text(
        "services:\n"
        "  web:\n"
        "    image: nginx\n"
        "    labels:\n"
        "      deck-chores.clear-caches.command: drush cc all\n"
        "      deck-chores.clear-caches.interval: daily\n"
        "      deck-chores.clear-caches.user: www-data\n"
        "      deck-chores.clear-caches.env.ENVIRONMENT: production\n"
        "      deck-chores.yearly.command: 'true'\n"
        "      deck-chores.yearly.cron: 2027 * * * * 0 0 0\n"
    )
    printed = _orchestrator(database_url, "jobs", "import", "deck-chores", str(compose))
    assert printed.returncode == 0, printed.stderr
    assert "name: web.clear-caches" in printed.stdout
    assert "com.docker.compose.project: shop" in printed.stdout
    assert "names a year (2027): our cron lines repeat every year" in printed.stderr


def test_import_of_unreadable_input_is_one_line_exit_2(database_url: str, tmp_path: Path) -> None:
    missing = _orchestrator(database_url, "jobs", "import", "ofelia", str(tmp_path / "no.ini"))
    assert missing.returncode == 2
    assert (
        missing.stderr.strip() == f"{tmp_path / 'no.ini'}: cannot read: No such file or directory"
    )
    bad = tmp_path / "bad.ini"
    bad.write_text('[job-exec "x"]\nschedule = "@hourly\n')
    broken = _orchestrator(database_url, "jobs", "import", "ofelia", str(bad))
    assert broken.returncode == 2
    assert broken.stderr.strip() == f"{bad}: line 2: a quote is not closed"
    yaml_file = tmp_path / "compose.yaml"
    yaml_file.write_text("services: [\n")
    compose = _orchestrator(database_url, "jobs", "import", "deck-chores", str(yaml_file))
    assert compose.returncode == 2
    assert len(compose.stderr.strip().splitlines()) == 1
    assert "Traceback" not in compose.stderr

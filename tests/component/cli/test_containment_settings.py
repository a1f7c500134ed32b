"""The containment settings and fields through the real executable: a pinned low port is
refused at validate and apply without the grant, bad pids values get one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.component.cli.test_errors_and_help import one_line, orchestrator

LOW = "name: web\nschedule: '@daily'\nimage: busybox\nports: ['8080', '80:9090']\n"
REFUSAL = (
    "job 'web': ports[1]: host port 80 is below 1024, where the host's own services "
    "listen: pin one from 1024 up, or set ORCHESTRATOR_ALLOW_LOW_PORTS=true"
)


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    assert orchestrator("db", "upgrade", database_url=url, cwd=tmp_path).returncode == 0
    return url


@pytest.mark.parametrize("command", ["validate", "apply"])
def test_a_pinned_low_port_is_refused_without_the_grant(
    db: str, tmp_path: Path, command: str
) -> None:
    path = tmp_path / "web.yaml"
    path.write_text(LOW)
    refused = orchestrator("jobs", command, str(path), database_url=db, cwd=tmp_path)
    assert refused.returncode == 2
    assert one_line(refused) == f"{path}: {REFUSAL}"
    listed = orchestrator("jobs", "list", "--json", database_url=db, cwd=tmp_path)
    assert listed.stdout.strip() == "[]"
    granted = orchestrator(
        "jobs",
        command,
        str(path),
        database_url=db,
        cwd=tmp_path,
        ORCHESTRATOR_ALLOW_LOW_PORTS="true",
    )
    assert granted.returncode == 0, granted.stderr


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ("{pids: 0}", "resources.pids: 0 is not between 1 and 4194304"),
        ("{pids: -1}", "resources.pids: -1 is not between 1 and 4194304"),
        ("{pids: 99999999}", "resources.pids: 99999999 is not between 1 and 4194304"),
        ("{pids: many}", "resources.pids: must be a whole number, not"),
        ("{pids: 1.5}", "resources.pids: must be a whole number, not"),
    ],
)
def test_a_bad_pids_limit_in_a_job_is_one_line(
    tmp_path: Path, resources: str, expected: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\nschedule: '@daily'\nimage: busybox\nresources: {resources}\n")
    result = orchestrator(
        "jobs", "validate", str(path), database_url="sqlite:///x.db", cwd=tmp_path
    )
    assert result.returncode == 2
    assert one_line(result).startswith(f"{path}: job 'bad': {expected}")


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ORCHESTRATOR_DEFAULT_PIDS_LIMIT", "-5", "ORCHESTRATOR_DEFAULT_PIDS_LIMIT: '-5' is not"),
        ("ORCHESTRATOR_DEFAULT_PIDS_LIMIT", "lots", "is not a number of processes"),
        (
            "ORCHESTRATOR_ALLOW_LOW_PORTS",
            "maybe",
            "ORCHESTRATOR_ALLOW_LOW_PORTS: 'maybe' is not true or false",
        ),
        (
            "ORCHESTRATOR_UNPINNED_BINDS",
            "yes",
            "ORCHESTRATOR_UNPINNED_BINDS: 'yes' is not check or allow",
        ),
    ],
)
def test_bad_containment_settings_are_one_line(
    db: str, tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    result = orchestrator("jobs", "list", database_url=db, cwd=tmp_path, **{variable: value})
    assert result.returncode == 2
    assert expected in one_line(result)

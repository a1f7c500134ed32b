"""Bad input through the real executable: one line, exit 2 (or 1 when the state refuses),
no traceback, nothing written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.component.cli.test_errors_and_help import one_line, orchestrator

BIG = "9223372036854775808"  # 2**63: one past the largest 64-bit id


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    assert orchestrator("db", "upgrade", database_url=url, cwd=tmp_path).returncode == 0
    return url


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["runs", "show", BIG], f"{BIG} is not in the range 1<=x<=9223372036854775807"),
        (["runs", "logs", "99999999999999999999"], "is not in the range"),
        (["runs", "cancel", BIG], "is not in the range"),
        (["runs", "list", "--limit", "99999999999999999999"], "is not in the range"),
        (["runs", "list", "--limit", "-1"], "is not in the range"),
        (["runs", "cancel", "1", "--grace", "99999999999"], "is not in the range 0<=x<=86400"),
        (["runs", "list", "--since", "0s"], "'0s' is not a positive duration"),
        (["runs", "list", "--since", "99999999999999d"], "is longer than 100 years"),
        (["runs", "list", "--since", "yesterday"], "is neither a time"),
        (["--output-limit", "99999999999999999999999t", "jobs", "list"], "larger than any size"),
        (["--output-limit", "2g", "jobs", "list"], "more than the 1g a run may keep"),
        (["--port-range", "1-99999999999999999999", "jobs", "list"], "must lie within 1-65535"),
        (["--port-host-ip", "127.0.0.l", "jobs", "list"], "'127.0.0.l' is not an IP address"),
        (["--container-label", "orchestrator.job=x", "jobs", "list"], "set by the orchestrator"),
        (["--allowed-host-paths", "srv", "jobs", "list"], "not an absolute host directory"),
        (["runs", "show", "--nope"], "orchestrator runs show: No such option '--nope'"),
        (["jobs", "frobnicate"], "orchestrator jobs: No such command 'frobnicate'"),
    ],
)
def test_values_a_user_can_type_get_one_line_and_exit_2(
    db: str, tmp_path: Path, args: list[str], expected: str
) -> None:
    result = orchestrator(*args, database_url=db, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert expected in one_line(result)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@h:abc/db", "the database URL is not valid: invalid literal for int()"),
        ("sqlite://", "is in memory"),
        ("sqlite:///:memory:", "is in memory"),
    ],
)
def test_database_urls_that_cannot_work_are_refused(
    tmp_path: Path, url: str, expected: str
) -> None:
    result = orchestrator("jobs", "list", database_url=url, cwd=tmp_path)
    assert result.returncode == 2 and expected in one_line(result)


def test_a_command_does_not_create_the_database_it_then_refuses(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'absent.db'}"
    for command in (["jobs", "list"], ["db", "current"], ["runs", "list"]):
        result = orchestrator(*command, database_url=url, cwd=tmp_path)
        assert result.returncode == 1
        assert "does not exist yet: run 'orchestrator db upgrade'" in one_line(result)
    assert not (tmp_path / "absent.db").exists()


def test_a_schema_from_a_newer_orchestrator_is_named_not_upgraded(db: str, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "o.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    for command in (["db", "current"], ["db", "upgrade"], ["jobs", "list"]):
        result = orchestrator(*command, database_url=db, cwd=tmp_path)
        assert result.returncode == 1, command
        line = one_line(result)
        assert "revision 9999, which this orchestrator does not know" in line, line
        assert "run 'orchestrator db upgrade'" not in line


def test_adopt_after_zero_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    result = orchestrator("serve", "--adopt-after", "0s", database_url=url, cwd=tmp_path)
    assert result.returncode == 2
    assert "adopt after: '0s' is not a positive duration" in one_line(result)
    assert not (tmp_path / "serve.db").exists()


def test_serve_refuses_job_files_that_bind_a_system_part_before_anything_is_written(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "k.yaml").write_text("name: k\nschedule: '@daily'\nimage: x\nvolumes: ['/proc:/p']\n")
    result = orchestrator("serve", "--jobs", str(jobs), database_url=url, cwd=tmp_path)
    assert result.returncode == 2
    line = one_line(result)
    assert "job 'k': volumes: /proc:/p: host path /proc is a part of the host's system" in line
    assert "ORCHESTRATOR_ALLOWED_HOST_PATHS" in line
    assert not (tmp_path / "serve.db").exists()


def test_apply_prune_of_nothing_refuses_to_delete_every_job(db: str, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "a.yaml").write_text('name: a\nschedule: "@daily"\nimage: busybox\n')
    assert orchestrator("jobs", "apply", str(jobs), database_url=db, cwd=tmp_path).returncode == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = orchestrator("jobs", "apply", str(empty), "--prune", database_url=db, cwd=tmp_path)
    assert refused.returncode == 1
    assert "has no jobs, so --prune would delete all 1: add --force" in one_line(refused)
    listed = orchestrator("jobs", "list", "--json", database_url=db, cwd=tmp_path)
    assert '"name": "a"' in listed.stdout  # nothing was deleted
    forced = orchestrator(
        "jobs", "apply", str(empty), "--prune", "--force", database_url=db, cwd=tmp_path
    )
    assert forced.returncode == 0 and "deleted" in forced.stdout


def test_a_disabled_job_runs_only_with_force(db: str, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text('name: a\nschedule: "@daily"\nimage: busybox\n')
    orchestrator("jobs", "apply", str(tmp_path / "a.yaml"), database_url=db, cwd=tmp_path)
    orchestrator("jobs", "disable", "a", database_url=db, cwd=tmp_path)
    result = orchestrator("jobs", "run", "a", "--detach", database_url=db, cwd=tmp_path)
    assert result.returncode == 1
    assert one_line(result) == "job a is disabled: enable it, or run it anyway with --force"
    forced = orchestrator("jobs", "run", "a", "--detach", "--force", database_url=db, cwd=tmp_path)
    assert forced.returncode == 0 and "queued run 1" in forced.stdout


def test_logs_of_a_pending_run_say_they_wait_for_a_scheduler(db: str, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text('name: a\nschedule: "@daily"\nimage: busybox\n')
    orchestrator("jobs", "apply", str(tmp_path / "a.yaml"), database_url=db, cwd=tmp_path)
    orchestrator("jobs", "run", "a", "--detach", database_url=db, cwd=tmp_path)
    import subprocess
    import sys

    follow = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "runs", "logs", "1", "--follow"],
        env={"ORCHESTRATOR_DATABASE_URL": db, "PATH": "/usr/bin:/bin"},
        stderr=subprocess.PIPE,
        text=True,
    )
    assert follow.stderr is not None
    line = follow.stderr.readline()
    follow.kill()
    follow.wait()
    follow.stderr.close()
    assert "run 1 of a is pending: waiting for a scheduler to start it" in line


@pytest.mark.parametrize(
    ("image", "ok"),
    [
        ("busybox", True),
        ("local/busybox:latest", True),
        ("127.0.0.1:5000/team/app:1.2", True),
        ("ghcr.io/o/i@sha256:" + "a" * 64, True),
        ("x/../../images/create?fromImage=evil", False),
        ("Busybox", False),
        ("busybox:", False),
        ("a b", False),
        ("busybox:latest:latest", False),
    ],
)
def test_image_references_follow_the_engines_grammar(image: str, ok: bool) -> None:
    from orchestrator.errors import InvalidSpecError
    from orchestrator.spec import parse_job

    job = {"name": "j", "schedule": "@daily", "image": image}
    if ok:
        parse_job(job)
    else:
        with pytest.raises(InvalidSpecError, match="is not an image reference"):
            parse_job(job)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"volumes": ["/srv:/"]}, "the target cannot be the job's / itself"),
        ({"volumes": ["/srv:/a/../b"]}, "must be a normalised path"),
        ({"volumes": ["/srv://a"]}, "must be a normalised path"),
        ({"timezone": "localtime"}, "depends on the host"),
        ({"timezone": "posixrules"}, "depends on the host"),
        ({"timezone": "Factory"}, "depends on the host"),
        ({"timezone": "right/UTC"}, "depends on the host"),
        ({"command": ["echo", "a\x00b"]}, "NUL byte"),
        ({"command": "echo a\x00b"}, "NUL byte"),
        ({"environment": {"A": "x\x00"}}, "NUL byte"),
        ({"resources": {"memory": "99999999999999999999999t"}}, "larger than any size"),
    ],
)
def test_values_the_engine_cannot_take_are_refused_at_validate(
    fields: dict[str, object], message: str
) -> None:
    from orchestrator.errors import InvalidSpecError
    from orchestrator.spec import parse_job

    with pytest.raises(InvalidSpecError, match=message):
        parse_job({"name": "j", "schedule": "@daily", "image": "busybox", **fields})


def test_a_symbolic_link_to_nothing_is_an_error_not_a_skip(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "gone.yaml").symlink_to(tmp_path / "nowhere.yaml")
    result = orchestrator("jobs", "validate", str(jobs), database_url="sqlite:///x", cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result) == f"{jobs}/gone.yaml: a symbolic link to nothing"

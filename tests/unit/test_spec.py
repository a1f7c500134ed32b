"""The job definition format: what parses, what does not, and how errors read."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from orchestrator.errors import InvalidInputError, InvalidSpecError
from orchestrator.spec import (
    CatchupPolicy,
    Concurrency,
    JobSpec,
    PortSpec,
    PullPolicy,
    VolumeSpec,
    load_jobs,
    parse_job,
    parse_jobs_text,
)
from orchestrator.units import parse_duration

DESIGN_EXAMPLE = """
name: nightly-report            # unique, [a-z0-9][a-z0-9_.-]*
schedule: "0 3 * * *"
timezone: Europe/Berlin
image: alpine:3.20
command: ["sh", "-c", "echo hi"]
environment: {KEY: value}
volumes:
  - /srv/reports:/out
  - /srv/config:/cfg:ro
  - cache:/cache
ports:
  - "8080"
  - "9000:9000"
network: app_default
timeout: 15m
retries: {count: 2, backoff: 30s}
concurrency: forbid
catchup: {policy: latest, deadline: 1h}
resources: {memory: 256m, cpus: 0.5}
user: "1000:1000"
enabled: true
"""


def one(text: str, source: str = "jobs/test.yaml") -> JobSpec:
    specs = parse_jobs_text(text, source)
    assert len(specs) == 1
    return specs[0]


def error_of(text: str, source: str = "jobs/backup.yaml") -> str:
    with pytest.raises(InvalidSpecError) as caught:
        parse_jobs_text(text, source)
    return str(caught.value)


def test_the_design_example_parses_into_a_frozen_record() -> None:
    spec = one(DESIGN_EXAMPLE)
    assert spec.name == "nightly-report"
    assert spec.schedule == "0 3 * * *"
    assert spec.timezone == "Europe/Berlin"
    assert spec.command == ("sh", "-c", "echo hi")
    assert spec.environment == (("KEY", "value"),)
    assert spec.volumes == (
        VolumeSpec("/srv/reports", "/out"),
        VolumeSpec("/srv/config", "/cfg", read_only=True),
        VolumeSpec("cache", "/cache"),
    )
    assert spec.volumes[0].is_bind and not spec.volumes[2].is_bind
    assert spec.ports == (PortSpec(8080), PortSpec(9000, "tcp", 9000))
    assert spec.network == "app_default"
    assert spec.timeout == timedelta(minutes=15)
    assert spec.retries.count == 2 and spec.retries.backoff == timedelta(seconds=30)
    assert spec.concurrency is Concurrency.FORBID
    assert spec.catchup.policy is CatchupPolicy.LATEST
    assert spec.catchup.deadline == timedelta(hours=1)
    assert spec.resources.memory == 256 * 2**20 and spec.resources.cpus == 0.5
    assert spec.user == "1000:1000"
    assert spec.enabled is True
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]


def test_canonical_form_round_trips() -> None:
    spec = one(DESIGN_EXAMPLE)
    assert parse_job(spec.to_dict()) == spec
    assert parse_job(yaml.safe_load(yaml.safe_dump(spec.to_dict()))) == spec


def test_defaults() -> None:
    spec = one("name: a\nschedule: '@daily'\nimage: busybox\n")
    assert spec.timezone == "UTC"
    assert spec.command is None and spec.volumes == () and spec.ports == ()
    assert spec.concurrency is Concurrency.FORBID
    assert spec.catchup.policy is CatchupPolicy.LATEST and spec.catchup.deadline is None
    assert spec.retries.count == 0
    assert spec.pull is PullPolicy.MISSING
    assert spec.enabled


def test_command_as_a_string_is_split_like_a_shell() -> None:
    spec = one("name: a\nschedule: '@daily'\nimage: busybox\ncommand: sh -c 'echo \"a b\"'\n")
    assert spec.command == ("sh", "-c", 'echo "a b"')


def test_a_file_may_hold_a_list_or_several_documents() -> None:
    text = """
- {name: a, schedule: "@hourly", image: busybox}
- {name: b, schedule: "@every 30s", image: busybox}
---
name: c
schedule: "*/5 * * * *"
image: busybox
"""
    assert [spec.name for spec in parse_jobs_text(text, "x.yaml")] == ["a", "b", "c"]


def test_the_issue_example_error_line() -> None:
    message = error_of("name: backup\nschedule: '61 * * * *'\nimage: busybox\n")
    assert message.startswith(
        "jobs/backup.yaml: job 'backup': schedule: '61 * * * *' is not a valid cron expression"
    )
    assert "\n" not in message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("schedule: '@daily'\nimage: b", "job #1: name: is required"),
        ("name: a\nimage: b", "job 'a': schedule: is required"),
        ("name: a\nschedule: '@daily'", "job 'a': image: is required"),
        ("name: Backup\nschedule: '@daily'\nimage: b", "name: 'Backup' is not a valid job name"),
        ("name: a\nschedule: '@daily'\nimage: b\ncolour: red", "job 'a': colour: unknown field"),
        (
            "name: a\nschedule: '@daily'\nimage: b\ntimezone: Mars/Base",
            "timezone: 'Mars/Base' is not a known IANA time zone",
        ),
        ("name: a\nschedule: 5\nimage: b", "schedule: must be a string, not int 5"),
        (
            "name: a\nschedule: '@every 0s'\nimage: b",
            "schedule: '@every 0s' is not a valid interval",
        ),
        (
            "name: a\nschedule: '@daily'\nimage: b\ntimeout: soon",
            "timeout: 'soon' is not a duration",
        ),
        (
            "name: a\nschedule: '@daily'\nimage: b\nretries: {count: -1}",
            "retries.count: -1 is not between 0 and 100",
        ),
        (
            "name: a\nschedule: '@daily'\nimage: b\nretries: {tries: 1}",
            "retries.tries: unknown field",
        ),
        ("name: a\nschedule: '@daily'\nimage: b\nretries: {backoff: 0s}", "retries.backoff:"),
        (
            "name: a\nschedule: '@daily'\nimage: b\nconcurrency: sometimes",
            "concurrency: 'sometimes' is not one of allow, forbid, replace",
        ),
        (
            "name: a\nschedule: '@daily'\nimage: b\ncatchup: {policy: most}",
            "catchup.policy: 'most' is not one of none, latest, all",
        ),
        ("name: a\nschedule: '@daily'\nimage: b\ncatchup: {deadline: x}", "catchup.deadline:"),
        ("name: a\nschedule: '@daily'\nimage: b\nresources: {memory: lots}", "resources.memory:"),
        (
            "name: a\nschedule: '@daily'\nimage: b\nresources: {memory: 1k}",
            "resources.memory: the engine needs at least 6m",
        ),
        ("name: a\nschedule: '@daily'\nimage: b\nresources: {cpus: 0}", "resources.cpus:"),
        (
            "name: a\nschedule: '@daily'\nimage: b\nvolumes: [data]",
            "volumes[0]: 'data' is not source:target",
        ),
        (
            "name: a\nschedule: '@daily'\nimage: b\nvolumes: ['./data:/d']",
            "a bind source must be an absolute path",
        ),
        (
            "name: a\nschedule: '@daily'\nimage: b\nvolumes: ['/a:d']",
            "target 'd' must be an absolute path",
        ),
        (
            "name: a\nschedule: '@daily'\nimage: b\nvolumes: ['/a:/d:rx']",
            "mode 'rx' is not ro or rw",
        ),
        (
            "name: a\nschedule: '@daily'\nimage: b\nvolumes: ['/a:/d', '/b:/d']",
            "volumes[1]: target /d is mounted twice",
        ),
        (
            "name: a\nschedule: '@daily'\nimage: b\nvolumes: ['/a/../etc:/d']",
            "normalised absolute path",
        ),
        (
            "name: a\nschedule: '@daily'\nimage: b\nports: ['http']",
            "ports[0]: 'http' is not a port",
        ),
        ("name: a\nschedule: '@daily'\nimage: b\nports: [70000]", "70000 is not a port number"),
        (
            "name: a\nschedule: '@daily'\nimage: b\nports: ['80', '80']",
            "ports[1]: container port 80/tcp is listed twice",
        ),
        (
            "name: a\nschedule: '@daily'\nimage: b\nports: ['1:80', '1:81']",
            "ports[1]: host port 1 is pinned twice",
        ),
        (
            "name: a\nschedule: '@daily'\nimage: b\nenvironment: [A=1]",
            "environment: must be a mapping, not a list",
        ),
        (
            "name: a\nschedule: '@daily'\nimage: b\nenvironment: {1A: x}",
            "environment.1A: is not a valid variable name",
        ),
        (
            "name: a\nschedule: '@daily'\nimage: b\nenvironment: {ORCHESTRATOR_PORT_1: x}",
            "set by us",
        ),
        (
            "name: a\nschedule: '@daily'\nimage: b\nenvironment: {A: [1]}",
            "environment.A: must be a string or number",
        ),
        ("name: a\nschedule: '@daily'\nimage: b\ncommand: []", "command: must not be empty"),
        (
            "name: a\nschedule: '@daily'\nimage: b\ncommand: \"echo 'oops\"",
            "command: cannot be split into words",
        ),
        (
            "name: a\nschedule: '@daily'\nimage: b\nenabled: yes please",
            "enabled: must be true or false",
        ),
        ("name: a\nschedule: '@daily'\nimage: b\nuser: 'a b'", "user: 'a b' is not user"),
        (
            "name: a\nschedule: '@daily'\nimage: 'bad image'",
            "image: 'bad image' is not an image reference",
        ),
        (
            "name: a\nschedule: '@daily'\nimage: b\nworking_dir: tmp",
            "working_dir: 'tmp' must be an absolute path",
        ),
        (
            "name: a\nschedule: '@daily'\nimage: b\npull: sometimes",
            "pull: 'sometimes' is not one of always, missing, never",
        ),
        ("- 5", "job #1: must be a mapping, not int 5"),
    ],
)
def test_errors_name_the_file_the_job_and_the_field(body: str, expected: str) -> None:
    message = error_of(body)
    assert message.startswith("jobs/backup.yaml: job")
    assert expected in message


def test_yaml_errors_give_the_line_and_a_hint() -> None:
    message = error_of("name: a\nschedule: */5 * * * *\nimage: b\n")
    assert message.startswith("jobs/backup.yaml: line 2, column 12: invalid YAML")
    assert "quote values" in message


def test_duplicate_keys_are_refused() -> None:
    message = error_of("name: a\nschedule: '@daily'\nimage: b\nimage: c\n")
    assert "duplicate key 'image'" in message
    assert "line 4" in message


def test_every_bad_job_of_a_file_is_reported() -> None:
    message = error_of(
        "- {name: a, schedule: bad, image: b}\n"
        "- {name: ok, schedule: '@daily', image: b}\n"
        "- {name: c, image: b}\n"
    )
    lines = message.splitlines()
    assert len(lines) == 2
    assert "job 'a': schedule:" in lines[0]
    assert "job 'c': schedule: is required" in lines[1]


def test_load_jobs_from_folders(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text("name: a\nschedule: '@daily'\nimage: b\n")
    (tmp_path / "sub" / "b.yml").write_text("- {name: b, schedule: '@daily', image: b}\n")
    (tmp_path / "notes.txt").write_text("not a job")
    (tmp_path / "empty.yaml").write_text("# nothing here yet\n")
    loaded = load_jobs([tmp_path])
    assert [(job.spec.name, Path(job.source).name) for job in loaded] == [
        ("a", "a.yaml"),
        ("b", "b.yml"),
    ]


def test_duplicate_names_across_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: same\nschedule: '@daily'\nimage: b\n")
    (tmp_path / "b.yaml").write_text("name: same\nschedule: '@hourly'\nimage: b\n")
    with pytest.raises(
        InvalidSpecError, match=r"b.yaml: job 'same': name: also defined in .*a.yaml"
    ):
        load_jobs([tmp_path])


def test_a_batch_with_one_bad_file_returns_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: good\nschedule: '@daily'\nimage: b\n")
    (tmp_path / "b.yaml").write_text("name: bad\nschedule: '@dialy'\nimage: b\n")
    with pytest.raises(InvalidSpecError) as caught:
        load_jobs([tmp_path])
    assert "b.yaml: job 'bad': schedule: '@dialy' is not a valid cron expression" in str(
        caught.value
    )


def test_missing_paths_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpecError, match=r"nope\.yaml: no such file or folder"):
        load_jobs([tmp_path / "nope.yaml"])
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InvalidSpecError, match=r"binary\.yaml: cannot read"):
        load_jobs([tmp_path / "binary.yaml"])


def test_spec_errors_are_value_errors_too() -> None:
    assert issubclass(InvalidSpecError, InvalidInputError)
    assert issubclass(InvalidSpecError, ValueError)
    assert InvalidSpecError("x").exit_code == 2


def test_example_jobs_are_valid_and_cover_the_promised_kinds() -> None:
    jobs_dir = Path(__file__).resolve().parents[2] / "jobs"
    specs = [job.spec for job in load_jobs([jobs_dir])]
    assert len(specs) >= 3
    assert any(not spec.schedule.startswith("@every") for spec in specs)
    # One fires within a service's first minute (run-local.sh shows a run at once).
    assert any(
        spec.schedule.startswith("@every ")
        and parse_duration(spec.schedule.split()[1]) <= timedelta(seconds=30)
        for spec in specs
    )
    assert any(spec.schedule.startswith("@every") and spec.ports for spec in specs)
    assert any(
        any(v.is_bind for v in spec.volumes) and any(not v.is_bind for v in spec.volumes)
        for spec in specs
    )

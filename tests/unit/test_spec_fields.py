"""The one table of job keys (orchestrator.spec.fields.TABLE) and JobSpec agree: adding a
key to one without the other fails here. No exceptions: `name` is a row like any other."""

from __future__ import annotations

import dataclasses

from orchestrator.spec import FIELDS, REQUIRED, TABLE, JobSpec, parse_job

# Every key given, none at its default: each row parses, and `to_dict` gives each back.
EVERY_KEY = {
    "name": "every-key",
    "description": "all of them",
    "schedule": "*/5 * * * *",
    "timezone": "Europe/Berlin",
    "image": "registry.example.com/team/tool:1.2",
    "command": ["run", "--all"],
    "entrypoint": ["/bin/sh", "-c"],
    "working_dir": "/work",
    "environment": {"LEVEL": "debug"},
    "secrets": [{"name": "db-password", "env": "DB_PASSWORD"}],
    "notify": [{"webhook": "https://hooks.example.com/x", "on": ["failed"]}],
    "ping": "https://hc-ping.example.com/uuid",
    "on_success": ["after"],
    "on_failure": ["cleanup"],
    "env_file": "/etc/tool.env",
    "volumes": ["/srv/data:/data:ro"],
    "ports": ["8080/tcp"],
    "network": "app_default",
    "timeout": "15m",
    "start_deadline": "2m",
    "retries": {"count": 2, "backoff": "1m"},
    "concurrency": "allow",
    "catchup": {"policy": "all", "deadline": "1h"},
    "resources": {"memory": "256m", "cpus": 0.5},
    "user": "1000:1000",
    "pull": "always",
    "privileged": True,
    "host_network": False,
    "host_pid": True,
    "docker_socket": True,
    "enabled": False,
    "labels": {"team": "data"},
}
# The keys only an exec job has (and the ones it shares), none at its default.
EVERY_EXEC_KEY = {
    "name": "every-exec-key",
    "schedule": "@hourly",
    "kind": "exec",
    "selector": {"com.docker.compose.service": "db"},
    "pick": "all",
    "command": "pg_dump shop",
}


def test_every_jobspec_field_has_exactly_one_row_and_every_row_a_field() -> None:
    fields = [field.name for field in dataclasses.fields(JobSpec)]
    assert len(fields) == len(set(fields))
    assert set(fields) - set(TABLE) == set(), "fields of JobSpec with no row in TABLE"
    assert set(TABLE) - set(fields) == set(), "rows of TABLE with no field in JobSpec"


def test_the_required_rows_are_the_fields_without_a_default() -> None:
    no_default = [
        field.name
        for field in dataclasses.fields(JobSpec)
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    ]
    assert set(REQUIRED) == set(no_default) == {"name", "schedule"}


def test_fields_and_required_come_from_the_table_in_its_order() -> None:
    assert list(TABLE) == list(FIELDS)
    assert FIELDS[:5] == ("name", "description", "schedule", "timezone", "image")
    assert tuple(key for key in FIELDS if TABLE[key].required) == REQUIRED


def test_every_row_parses_and_comes_back_in_the_canonical_form() -> None:
    assert set(EVERY_KEY) | set(EVERY_EXEC_KEY) | {"container"} == set(TABLE)
    given: set[str] = set()
    for data in (
        EVERY_KEY,
        EVERY_EXEC_KEY,
        {**EVERY_EXEC_KEY, "selector": None, "pick": None, "container": "shop-db-1"},
    ):
        spec = parse_job(data)
        assert parse_job(spec.to_dict()) == spec
        assert set(spec.to_dict()) <= set(TABLE)
        defaults = JobSpec(name="x", schedule="@daily")
        given |= {key for key in TABLE if getattr(spec, key) != getattr(defaults, key)}
    assert given == set(TABLE) - {"host_network"}  # false is its default

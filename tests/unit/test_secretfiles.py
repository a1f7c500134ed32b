"""Secrets, env files and registry logins read at launch."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from orchestrator.errors import InvalidSpecError
from orchestrator.runner.secretfiles import (
    SecretUnavailableError,
    load_launch_secrets,
    parse_env_file,
    registry_login,
    registry_of,
)
from orchestrator.spec import masked_definition, parse_job


def job(**fields: object) -> object:
    return parse_job({"name": "j", "schedule": "@daily", "image": "busybox", **fields})


def test_secrets_become_variables_and_files_and_are_masked(tmp_path: Path) -> None:
    (tmp_path / "db").write_text("s3cret-value\n")
    (tmp_path / "cert").write_bytes(b"---KEY---")
    spec = job(secrets=[{"name": "db", "env": "DB_PASSWORD"}, {"name": "cert", "file": "/c"}])
    given = load_launch_secrets(spec, str(tmp_path))  # type: ignore[arg-type]
    assert given.environment == {"DB_PASSWORD": "s3cret-value"}
    assert given.files == {"/c": tmp_path / "cert"}
    assert given.masked == (b"s3cret-value", b"---KEY---")  # without the newline


def test_a_missing_secret_names_the_job_and_the_file_not_a_value(tmp_path: Path) -> None:
    spec = job(secrets=[{"name": "absent", "env": "X"}])
    with pytest.raises(SecretUnavailableError, match=r"job 'j': secret 'absent' cannot be read"):
        load_launch_secrets(spec, str(tmp_path))  # type: ignore[arg-type]


def test_env_files_are_read_literally_and_secret_looking_values_masked(tmp_path: Path) -> None:
    env = tmp_path / "app.env"
    env.write_text('# comment\n\nMODE=0644\nAPI_TOKEN=tok-123\nQUOTED="kept"\n')
    given = load_launch_secrets(job(env_file=str(env)), "/nonexistent")  # type: ignore[arg-type]
    assert given.environment == {"MODE": "0644", "API_TOKEN": "tok-123", "QUOTED": '"kept"'}
    assert given.masked == (b"tok-123",)


def test_a_bad_env_file_line_is_named_by_number_never_echoed() -> None:
    with pytest.raises(SecretUnavailableError) as caught:
        parse_env_file("A=1\nnot a pair secretvalue\n", "/x.env")
    assert str(caught.value) == "env file /x.env: line 2 is not KEY=VALUE"


def test_secret_looking_environment_values_are_masked_for_display() -> None:
    spec = job(environment={"DB_PASSWORD": "p", "api_key": "k", "AUTH_TOKEN": "t", "MODE": "x"})
    shown = masked_definition(spec)  # type: ignore[arg-type]
    assert shown["environment"] == {
        "AUTH_TOKEN": "***",
        "DB_PASSWORD": "***",
        "MODE": "x",
        "api_key": "***",
    }
    assert spec.to_dict()["environment"]["DB_PASSWORD"] == "p"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ({"name": "../etc/passwd", "env": "X"}, "is not a secret's file name"),
        ({"name": "a"}, "give the secret as"),
        ({"name": "a", "env": "ORCHESTRATOR_X"}, "set by us"),
        ({"name": "a", "file": "relative"}, "must be an absolute path"),
        ({"name": "a", "env": "X", "other": 1}, "unknown field"),
    ],
)
def test_bad_secret_entries_are_refused(secret: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        job(secrets=[secret])


def test_a_secret_variable_may_not_repeat_a_plain_one() -> None:
    with pytest.raises(InvalidSpecError, match=r"secrets\[0\].env: X is also in environment"):
        job(environment={"X": "1"}, secrets=[{"name": "a", "env": "X"}])


def test_the_definition_round_trips_with_secrets() -> None:
    spec = job(secrets=[{"name": "a", "env": "X", "file": "/run/a"}], env_file="/e.env")
    assert parse_job(spec.to_dict()) == spec  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("busybox", "docker.io"),
        ("library/busybox:1", "docker.io"),
        ("ghcr.io/o/i:1", "ghcr.io"),
        ("127.0.0.1:5000/i", "127.0.0.1:5000"),
        ("localhost/i", "localhost"),
    ],
)
def test_registry_of(image: str, registry: str) -> None:
    assert registry_of(image) == registry


def test_registry_logins_come_from_a_docker_config() -> None:
    auth = base64.b64encode(b"robot:pa:ss").decode()
    config = json.dumps(
        {
            "auths": {
                "https://index.docker.io/v1/": {"username": "hub", "password": "h"},
                "reg.example:5000": {"auth": auth},
            }
        }
    )
    assert registry_login(config, "reg.example:5000/app:1", "s") == {
        "username": "robot",
        "password": "pa:ss",
    }
    assert registry_login(config, "busybox", "s") == {"username": "hub", "password": "h"}
    assert registry_login(config, "other.example/x", "s") is None
    with pytest.raises(SecretUnavailableError, match=r"not a Docker config\.json"):
        registry_login("nope", "busybox", "secret 'r'")

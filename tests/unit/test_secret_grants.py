"""The secrets policy, each case written as the job that tries to read what it may not,
on real files (links, hard links, FIFOs, /dev/zero) in a temporary folder."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import InvalidInputError, UnsafeJobError
from orchestrator.policies.secret_grants import (
    SecretPolicy,
    ServiceFile,
    check_job,
    parse_grants,
)
from orchestrator.runner import secretfiles
from orchestrator.runner.secretfiles import (
    SecretUnavailableError,
    identify,
    load_launch_secrets,
    read_regular_file,
)
from orchestrator.spec import parse_job


def job(name: str = "sneaky", **fields: Any) -> Any:
    return parse_job({"name": name, "schedule": "@daily", "image": "busybox", **fields})


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "tokens").write_text("ops:tok-1234567890abcdef\n")
    (folder / "db_password").write_text("pw\n")
    return folder


def policy(secrets: Path, *files: tuple[str, Path | str], **more: Any) -> SecretPolicy:
    service = tuple(ServiceFile(setting, str(path)) for setting, path in files)
    return SecretPolicy(secrets_dir=str(secrets), service_files=service, **more)


TOKENS = "ORCHESTRATOR_API_TOKENS_FILE"


def refused(spec: Any, rules: SecretPolicy) -> str:
    with pytest.raises(UnsafeJobError) as caught:
        check_job(spec, rules, identify)
    return str(caught.value)


def test_a_job_naming_the_tokens_file_as_a_secret_is_refused(secrets: Path) -> None:
    rules = policy(secrets, (TOKENS, secrets / "tokens"))
    line = refused(job(secrets=[{"name": "tokens", "env": "T"}]), rules)
    assert line == (
        f"job 'sneaky': secrets[0]: {secrets}/tokens is the file the service's "
        f"{TOKENS} reads, which no job may name (no setting permits it)"
    )
    check_job(job(secrets=[{"name": "db_password", "env": "P"}]), rules, identify)


def test_a_link_in_the_secrets_dir_to_a_service_file_elsewhere_is_refused(
    tmp_path: Path, secrets: Path
) -> None:
    elsewhere = tmp_path / "etc" / "db-url"
    elsewhere.parent.mkdir()
    elsewhere.write_text("postgresql://u:p@h/d\n")
    (secrets / "innocent").symlink_to(elsewhere)
    rules = policy(secrets, ("ORCHESTRATOR_DATABASE_URL_FILE", elsewhere))
    line = refused(job(secrets=[{"name": "innocent", "file": "/x"}]), rules)
    assert "secrets[0]:" in line and "ORCHESTRATOR_DATABASE_URL_FILE reads" in line


def test_a_hard_link_to_a_service_file_is_refused(tmp_path: Path, secrets: Path) -> None:
    registry = tmp_path / "registry.json"
    registry.write_text("{}")
    os.link(registry, secrets / "copy")
    rules = policy(secrets, ("ORCHESTRATOR_REGISTRY_AUTH", registry))
    assert "ORCHESTRATOR_REGISTRY_AUTH" in refused(
        job(secrets=[{"name": "copy", "env": "C"}]), rules
    )


def test_a_setting_spelled_with_dot_dot_still_guards_its_file(secrets: Path) -> None:
    (secrets / "sub").mkdir()
    rules = policy(secrets, (TOKENS, f"{secrets}/sub/../tokens"))
    assert TOKENS in refused(job(secrets=[{"name": "tokens", "env": "T"}]), rules)


def test_a_service_file_that_does_not_exist_here_is_compared_by_path(secrets: Path) -> None:
    rules = policy(secrets, (TOKENS, secrets / "not-here-yet"))
    assert TOKENS in refused(job(secrets=[{"name": "not-here-yet", "env": "T"}]), rules)


def test_a_notification_url_or_signing_key_naming_a_service_file_is_refused(
    secrets: Path,
) -> None:
    rules = policy(secrets, (TOKENS, secrets / "tokens"))
    ping = job(ping="http://127.0.0.1:9/{{secret:tokens}}")
    assert refused(ping, rules).startswith("job 'sneaky': ping: ")
    hook = job(notify=[{"webhook": "http://127.0.0.1:9/{{secret:tokens}}"}])
    assert refused(hook, rules).startswith("job 'sneaky': notify[0].url: ")
    signed = job(notify=[{"webhook": "http://127.0.0.1:9/h", "secret": "tokens"}])
    assert refused(signed, rules).startswith("job 'sneaky': notify[0].secret: ")


def test_an_env_file_that_is_a_service_file_is_refused(secrets: Path) -> None:
    rules = policy(secrets, (TOKENS, secrets / "tokens"))
    line = refused(job(env_file=str(secrets / "tokens")), rules)
    assert line.startswith("job 'sneaky': env_file: ") and TOKENS in line


def test_grants_limit_each_secret_to_the_jobs_their_globs_match(secrets: Path) -> None:
    rules = policy(secrets, grants=parse_grants("db_password:backup-*, slack_url:*"))
    check_job(job("backup-nightly", secrets=[{"name": "db_password", "env": "P"}]), rules, identify)
    line = refused(job("report", secrets=[{"name": "db_password", "env": "P"}]), rules)
    assert line == (
        "job 'report': secrets[0]: secret 'db_password' is not granted to this job "
        "(ORCHESTRATOR_SECRET_GRANTS grants it to backup-*; add db_password:report to permit it)"
    )
    unnamed = refused(job("backup-x", ping="http://h/{{secret:other}}"), rules)
    assert "secret 'other'" in unnamed and "does not name it" in unnamed


def test_grants_hold_for_an_env_file_in_the_secrets_dir(secrets: Path) -> None:
    (secrets / "app.env").write_text("A=1\n")
    rules = policy(secrets, grants=parse_grants("app.env:web-*"))
    check_job(job("web-1", env_file=str(secrets / "app.env")), rules, identify)
    line = refused(job("batch", env_file=str(secrets / "app.env")), rules)
    assert line.startswith("job 'batch': env_file: secret 'app.env' is not granted")


def test_an_env_file_outside_the_secrets_dir_and_allowed_paths_is_refused(
    tmp_path: Path, secrets: Path
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "app.env").write_text("A=1\n")
    spec = job(env_file=str(tmp_path / "data" / "app.env"))
    line = refused(spec, policy(secrets))
    assert line == (
        f"job 'sneaky': env_file {tmp_path}/data/app.env is outside the secrets directory "
        f"{secrets} (ORCHESTRATOR_SECRETS_DIR) and ORCHESTRATOR_ALLOWED_HOST_PATHS (empty): "
        "put it in one, or add its directory to ORCHESTRATOR_ALLOWED_HOST_PATHS"
    )
    check_job(spec, policy(secrets, env_file_dirs=(str(tmp_path / "data"),)), identify)
    (secrets / "out").symlink_to(tmp_path / "data" / "app.env")  # a link does not let it in
    assert "is outside" in refused(job(env_file=str(secrets / "out")), policy(secrets))


@pytest.mark.parametrize("entry", ["db_password", "db_password:", ":backup-*", "a/b:x", ","])
def test_a_malformed_grant_names_the_entry(entry: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_grants(f"ok:*,{entry}")
    assert str(caught.value).startswith("ORCHESTRATOR_SECRET_GRANTS: entry ")
    assert "is not SECRET:JOBGLOB" in str(caught.value)


def test_unset_grants_limit_nothing() -> None:
    assert parse_grants(None) is None and parse_grants("  ") is None


def test_a_fifo_env_file_is_refused_at_once_without_a_writer(secrets: Path) -> None:
    fifo = secrets / "fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(SecretUnavailableError) as caught:
        load_launch_secrets(job(env_file=str(fifo)), str(secrets))
    assert time.monotonic() - started < 2
    assert str(caught.value) == (
        f"job 'sneaky': env_file {fifo} is a FIFO, not a regular file: refused, nothing read"
    )


def test_dev_zero_is_refused_before_a_byte_is_read() -> None:
    with pytest.raises(SecretUnavailableError, match="is a character device, not a regular"):
        read_regular_file("/dev/zero", 1024, "env_file")


def test_a_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.env"
    big.write_bytes(b"A=" + b"x" * 4096)
    with pytest.raises(SecretUnavailableError, match="is larger than 2 KiB"):
        read_regular_file(big, 2048, "env_file")


def test_a_read_that_hangs_is_given_up_within_the_patience(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A hung network file system, stood in for by a read that sleeps.
    monkeypatch.setattr(secretfiles, "READ_PATIENCE_SECONDS", 0.3)
    monkeypatch.setattr(secretfiles, "_read_regular", lambda *_: time.sleep(5) or b"")
    started = time.monotonic()
    with pytest.raises(SecretUnavailableError, match=r"was not read within 0\.3 s"):
        read_regular_file(tmp_path / "slow.env", 1024, "env_file")
    assert time.monotonic() - started < 2


def test_secret_looking_environment_values_are_masked_in_output() -> None:
    spec = job(environment={"API_TOKEN": "tok-abcdef", "DB_PASSWORD": "pw-1", "MODE": "0644"})
    given = load_launch_secrets(spec, "/nonexistent")
    assert set(given.masked) == {b"tok-abcdef", b"pw-1"}

"""The secrets policy, each case written as the job that tries to read what it may not,
on real files (links, hard links, FIFOs, /dev/zero) in a temporary folder."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import InvalidInputError, UnsafeJobError
from orchestrator.hostpaths import ON_HOST
from orchestrator.policies.secret_grants import (
    SecretPolicy,
    ServiceFile,
    check_job,
    parse_grants,
)
from orchestrator.runner import secretfiles, starting
from orchestrator.runner.launch_settings import LaunchSettings
from orchestrator.runner.secretfiles import (
    SecretUnavailableError,
    identify,
    load_launch_secrets,
    read_regular_file,
)
from orchestrator.service import senders
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


# A job with a read-write bind of an allowed directory swaps a link there between the
# launch's check and its read: the file read must be the file checked.
SERVICE_TOKEN = "tok-service-0123456789abcdef"


@pytest.fixture
def service_env(tmp_path: Path) -> Path:
    """A stand-in for the service's systemd EnvironmentFile holding its API token."""
    path = tmp_path / "etc" / "orchestrator.env"
    path.parent.mkdir()
    path.write_text(f"ORCHESTRATOR_API_TOKEN={SERVICE_TOKEN}\n")
    return path


def flip_link(link: Path, targets: tuple[Path, Path], stop: threading.Event) -> None:
    """Points `link` at each target in turn, about every millisecond (atomic renames)."""
    spare = link.with_name(link.name + ".next")
    turn = 0
    while not stop.is_set():
        turn += 1
        spare.unlink(missing_ok=True)
        spare.symlink_to(targets[turn % 2])
        os.replace(spare, link)
        time.sleep(0.001)


def race(link: Path, allowed: Path, forbidden: Path, launch: Any) -> tuple[int, int, int]:
    """Launch checks and reads while the link flips: (checks refused, reads refused, reads
    of the allowed file). Asserts the forbidden file's content is never returned."""
    stop = threading.Event()
    flipper = threading.Thread(target=flip_link, args=(link, (allowed, forbidden), stop))
    flipper.start()
    checked = changed = read = tries = 0
    deadline = time.monotonic() + 60
    try:
        # At least 1,000 tries, and on until the flips have been seen by both the check
        # and the read (a loaded host may give the flipper few turns).
        while tries < 1000 or not (checked and read):
            assert time.monotonic() < deadline, (tries, checked, changed, read)
            tries += 1
            try:
                values = launch()
            except UnsafeJobError:
                checked += 1
                continue
            except SecretUnavailableError as error:
                assert "changed while it was checked: not read" in str(error)
                changed += 1
                continue
            assert SERVICE_TOKEN not in repr(values)
            read += 1
    finally:
        stop.set()
        flipper.join()
    return checked, changed, read


def test_an_env_file_link_swapped_after_the_check_never_reads_the_service_file(
    tmp_path: Path, secrets: Path, service_env: Path
) -> None:
    data = tmp_path / "data"  # in ALLOWED_HOST_PATHS; the job binds it read-write
    data.mkdir()
    allowed = data / "real.env"
    allowed.write_text("MODE=ok\n")
    link = data / "app.env"
    link.symlink_to(allowed)
    rules = policy(
        secrets, ("ORCHESTRATOR_API_TOKENS_FILE", service_env), env_file_dirs=(str(data),)
    )
    spec = job(env_file=str(link))

    def launch() -> dict[str, str]:  # as ContainerStarter.start does
        check_job(spec, rules, identify)
        return load_launch_secrets(spec, str(secrets), rules).environment

    checked, _, read = race(link, allowed, service_env, launch)
    assert checked and read


def test_a_secret_link_swapped_after_the_check_never_reads_the_service_file(
    tmp_path: Path, secrets: Path, service_env: Path
) -> None:
    allowed = secrets / "..2026_12_03" / "db_password"
    allowed.parent.mkdir()
    allowed.write_text("pw-allowed\n")
    link = secrets / "app_password"
    link.symlink_to(allowed)
    rules = policy(secrets, ("ORCHESTRATOR_API_TOKENS_FILE", service_env))
    spec = job(secrets=[{"name": "app_password", "env": "P"}])

    def launch() -> dict[str, str]:
        check_job(spec, rules, identify)
        return load_launch_secrets(spec, str(secrets), rules).environment

    checked, _, read = race(link, allowed, service_env, launch)
    assert checked and read


def test_a_link_swapped_to_the_service_file_before_the_read_is_refused(
    tmp_path: Path, secrets: Path, service_env: Path
) -> None:
    # The swap made to land between check and read, every time.
    data = tmp_path / "data"
    data.mkdir()
    (data / "real.env").write_text("MODE=ok\n")
    link = data / "app.env"
    link.symlink_to(service_env)
    rules = policy(
        secrets, ("ORCHESTRATOR_API_TOKENS_FILE", service_env), env_file_dirs=(str(data),)
    )
    with pytest.raises(SecretUnavailableError) as caught:
        load_launch_secrets(job(env_file=str(link)), str(secrets), rules)
    assert str(caught.value) == (
        f"job 'sneaky': env_file {link} changed while it was checked: not read"
    )


def test_a_webhook_key_swapped_to_the_service_file_before_the_read_is_refused(
    secrets: Path, service_env: Path
) -> None:
    (secrets / "hook_key").symlink_to(service_env)
    rules = policy(secrets, ("ORCHESTRATOR_API_TOKENS_FILE", service_env))
    outgoing = senders.Outgoing(
        "POST", "https://h/{{secret:hook_key}}", "run_failed", {}, 1, "hook_key", "sneaky"
    )
    read = senders._reader(outgoing, str(secrets), rules)
    with pytest.raises(SecretUnavailableError, match=r"hook_key' .* changed while it was checked"):
        senders.resolve_url(outgoing.url, str(secrets), read)
    with pytest.raises(SecretUnavailableError, match="changed while it was checked"):
        read("hook_key", "notify secret")


def test_secrets_that_are_links_kubernetes_style_still_read(
    tmp_path: Path, secrets: Path, service_env: Path
) -> None:
    # /run/secrets/NAME -> ..data/NAME, ..data -> ..2026_12_03_14_00 (the kubelet's layout)
    version = secrets / "..2026_12_03_14_00"
    version.mkdir()
    (version / "db_url").write_text("postgresql://u:p@db/app\n")
    (version / "app.env").write_text("MODE=prod\nAPI_KEY=k-1\n")
    (secrets / "..data").symlink_to(version.name)
    (secrets / "db_url").symlink_to("..data/db_url")
    (secrets / "app.env").symlink_to("..data/app.env")
    rules = policy(secrets, ("ORCHESTRATOR_API_TOKENS_FILE", service_env))
    spec = job(env_file=str(secrets / "app.env"), secrets=[{"name": "db_url", "env": "DB"}])
    check_job(spec, rules, identify)
    given = load_launch_secrets(spec, str(secrets), rules)
    assert given.environment == {"MODE": "prod", "API_KEY": "k-1", "DB": "postgresql://u:p@db/app"}
    outgoing = senders.Outgoing("GET", "https://h/{{secret:db_url}}", "run_failed", {}, 1)
    read = senders._reader(outgoing, str(secrets), rules)
    assert senders.resolve_url(outgoing.url, str(secrets), read) == (
        "https://h/postgresql%3A%2F%2Fu%3Ap%40db%2Fapp"
    )


def test_the_launch_reads_an_env_file_swapped_after_its_check_never(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, secrets: Path, service_env: Path
) -> None:
    # ContainerStarter.start itself, the swap landing just after its check of the path.
    data = tmp_path / "data"
    data.mkdir()
    (data / "real.env").write_text("MODE=ok\n")
    link = data / "app.env"
    link.symlink_to(data / "real.env")
    settings = LaunchSettings(
        engine_socket=None,
        secrets_dir=str(secrets),
        allowed_host_paths=(str(data),),
        service_files=(ServiceFile("ORCHESTRATOR_API_TOKENS_FILE", str(service_env)),),
    )

    def check_then_swap(*args: Any) -> None:
        check_job(*args)
        link.unlink()
        link.symlink_to(service_env)

    monkeypatch.setattr(starting, "check_job", check_then_swap)
    starter = starting.ContainerStarter(
        None,  # type: ignore[arg-type]  # nothing reaches the engine
        None,  # type: ignore[arg-type]
        ON_HOST,
        settings,
        engine_calls=threading.BoundedSemaphore(1),
        record_container=lambda *_: True,
        remove=lambda _: None,
    )
    with pytest.raises(SecretUnavailableError) as caught:
        starter.start(None, job(env_file=str(link)), [])  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"job 'sneaky': env_file {link} changed while it was checked: not read"
    )


def test_a_delivery_whose_key_is_swapped_after_its_check_sends_nothing(
    monkeypatch: pytest.MonkeyPatch, secrets: Path, service_env: Path
) -> None:
    (secrets / "hook_key").write_text("k-allowed\n")
    rules = policy(secrets, ("ORCHESTRATOR_API_TOKENS_FILE", service_env))
    real_check = senders.check_notification

    def check_then_swap(outgoing: Any, policy: SecretPolicy) -> None:
        real_check(outgoing, policy)
        (secrets / "hook_key").unlink()
        (secrets / "hook_key").symlink_to(service_env)

    monkeypatch.setattr(senders, "check_notification", check_then_swap)
    outgoing = senders.Outgoing(
        "GET", "https://hooks.invalid/{{secret:hook_key}}", "run_failed", {}, 1, None, "sneaky"
    )
    delivered, answer = senders.attempt(outgoing, str(secrets), secret_policy=rules)
    assert (delivered, answer) == (
        False,
        {"error": f"secret 'hook_key' {secrets}/hook_key changed while it was checked: not read"},
    )


def test_a_secret_file_link_swapped_after_the_read_mounts_the_file_checked(
    secrets: Path, service_env: Path
) -> None:
    # The engine mounts a `file:` secret later, at start: it must get the file checked,
    # not the link, which the job may swap meanwhile.
    version = secrets / "..2026_12_03_14_00"
    version.mkdir()
    (version / "cert").write_text("cert-allowed\n")
    (secrets / "cert").symlink_to(version / "cert")
    rules = policy(secrets, ("ORCHESTRATOR_API_TOKENS_FILE", service_env))
    spec = job(secrets=[{"name": "cert", "file": "/etc/cert"}])
    check_job(spec, rules, identify)
    given = load_launch_secrets(spec, str(secrets), rules)
    (secrets / "cert").unlink()
    (secrets / "cert").symlink_to(service_env)
    assert given.files["/etc/cert"].read_text() == "cert-allowed\n"

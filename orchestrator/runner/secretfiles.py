"""Secrets read at launch from the service's secrets directory; env files; registry logins.

A read the secrets policy governs takes the policy's check and runs it on the file it
opened (the kernel's path of the descriptor, and its device and inode), not on a path
resolved again: a link swapped between a check and the read cannot hand a job another
file (such as the service's tokens file).

Nothing read here is written to the database, a log or a message: callers get values
to hand to the engine and to the output masker, and errors that name files, not values.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import posixpath
import re
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import SecretUnavailableError as SecretUnavailableError
from orchestrator.errors import UnsafeJobError
from orchestrator.policies.secret_grants import (
    FileId,
    Identify,
    SecretPolicy,
    check_env_file,
    check_secret,
)
from orchestrator.settings import MAX_ENV_FILE_BYTES
from orchestrator.spec import SECRET_LOOKING_NAME, JobSpec

_ENV_LINE = re.compile(r"(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)")
MAX_SECRET_BYTES = 1024 * 1024
# A read that takes longer (a hung network or FUSE file system) fails the launch, so
# that it holds no launch slot.
READ_PATIENCE_SECONDS = 5.0
_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)
# The secrets policy's decision on the file a read opened: given an Identify that names
# that very file for the path read, it raises UnsafeJobError to refuse it.
CheckOpened = Callable[[Identify], None]


@dataclass(frozen=True)
class LaunchSecrets:
    """What a job's secrets give its container, and the values to mask in its output."""

    environment: dict[str, str]
    files: dict[str, Path]  # target in the job -> the file as the scheduler sees it
    masked: tuple[bytes, ...]


def secret_path(secrets_dir: str, name: str) -> Path:
    return Path(secrets_dir) / name


def identify(path: str) -> FileId:
    """The file a path names, links followed: its real path, and device and inode."""
    real = os.path.realpath(path)
    try:
        info = os.stat(real)
    except OSError:
        return FileId(real)
    return FileId(real, (info.st_dev, info.st_ino))


def read_secret(secrets_dir: str, name: str, check: CheckOpened | None = None) -> bytes:
    path = secret_path(secrets_dir, name)
    return read_regular_file(path, MAX_SECRET_BYTES, f"secret {name!r}", check)


def read_regular_file(
    path: Path | str, limit: int, what: str, check: CheckOpened | None = None
) -> bytes:
    """A regular file's bytes, at most `limit` of them, within READ_PATIENCE_SECONDS.

    Opened without blocking and checked before a byte is read: a FIFO, a device such as
    /dev/zero or a socket is refused at once instead of blocking or never ending; and
    `check`, when given, is run on the file opened (see the module doc).
    """
    return _within_patience(lambda: _read_regular(str(path), limit, what, check), what, str(path))


def _opened(fd: int, path: str, info: os.stat_result, what: str) -> FileId:
    """The file an open descriptor is: the kernel's path of it, its device and inode."""
    inode = (info.st_dev, info.st_ino)
    try:
        return FileId(os.readlink(f"/proc/self/fd/{fd}"), inode)
    except OSError:  # no /proc: the path resolved now, if it still names that file
        real = os.path.realpath(path)
        with contextlib.suppress(OSError):
            now = os.stat(real)
            if (now.st_dev, now.st_ino) == inode:
                return FileId(real, inode)
        raise _changed(what, path) from None


def _changed(what: str, path: str) -> SecretUnavailableError:
    return SecretUnavailableError(f"{what} {path} changed while it was checked: not read")


def _check_opened(check: CheckOpened, path: str, opened: FileId, what: str) -> None:
    named = os.path.normpath(path)

    def same_open(other: str) -> FileId:
        return opened if os.path.normpath(other) == named else identify(other)

    try:
        check(same_open)
    except UnsafeJobError:
        # The caller's check of the path passed: what it opened is no longer that file.
        raise _changed(what, path) from None


def _read_regular(path: str, limit: int, what: str, check: CheckOpened | None) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as error:
        raise SecretUnavailableError(
            f"{what} cannot be read from {path}: {error.strerror or error}"
        ) from None
    try:
        info = os.fstat(fd)
        if check is not None:
            _check_opened(check, path, _opened(fd, path, info, what), what)
        mode = info.st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            raise SecretUnavailableError(
                f"{what} {path} is {kind}, not a regular file: refused, nothing read"
            )
        chunks, size = [], 0
        while chunk := os.read(fd, 65536):
            size += len(chunk)
            if size > limit:
                raise SecretUnavailableError(
                    f"{what} {path} is larger than {limit // 1024} KiB: refused"
                )
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as error:
        raise SecretUnavailableError(
            f"{what} cannot be read from {path}: {error.strerror or error}"
        ) from None
    finally:
        os.close(fd)


def _within_patience(read: Callable[[], bytes], what: str, path: str) -> bytes:
    result: list[bytes] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(read())
        except BaseException as error:  # handed to the caller's thread
            failure.append(error)

    reader = threading.Thread(target=run, name="secret-read", daemon=True)
    reader.start()
    reader.join(READ_PATIENCE_SECONDS)
    if reader.is_alive():
        raise SecretUnavailableError(
            f"{what} {path} was not read within {READ_PATIENCE_SECONDS:g} s: refused"
        )
    if failure:
        raise failure[0]
    return result[0]


def parse_env_file(text: str, source: str) -> list[tuple[str, str]]:
    """`KEY=VALUE` lines as `docker run --env-file` reads them: values taken literally,
    blank lines and `#` comments skipped."""
    pairs: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ENV_LINE.fullmatch(line.lstrip())
        if match is None:
            # Never echo the line: it may hold a value.
            raise SecretUnavailableError(f"env file {source}: line {number} is not KEY=VALUE")
        pairs.append((match["key"], match["value"]))
    return pairs


def load_launch_secrets(
    spec: JobSpec, secrets_dir: str, policy: SecretPolicy | None = None
) -> LaunchSecrets:
    """What the job's env_file and secrets give it; with `policy`, each file read is
    checked by it as opened (see the module doc)."""
    environment: dict[str, str] = {}
    files: dict[str, Path] = {}
    masked: list[bytes] = []
    for key, value in spec.environment:
        if SECRET_LOOKING_NAME.search(key):
            masked.append(value.encode())
    if spec.env_file is not None:
        try:
            raw = read_regular_file(
                spec.env_file, MAX_ENV_FILE_BYTES, "env_file", _env_file_check(spec, policy)
            )
            text = raw.decode("utf-8")
        except SecretUnavailableError as error:
            raise SecretUnavailableError(f"job {spec.name!r}: {error}") from None
        except UnicodeDecodeError:
            raise SecretUnavailableError(
                f"job {spec.name!r}: env_file {spec.env_file} is not UTF-8 text"
            ) from None
        for key, value in parse_env_file(text, spec.env_file):
            environment[key] = value
            if SECRET_LOOKING_NAME.search(key):
                masked.append(value.encode())
    for index, secret in enumerate(spec.secrets):
        try:
            path = secret_path(secrets_dir, secret.name)
            opened: list[FileId] = []
            check = _secret_check(spec.name, f"secrets[{index}]", secret.name, policy, opened)
            raw = read_secret(secrets_dir, secret.name, check)
        except SecretUnavailableError as error:
            raise SecretUnavailableError(f"job {spec.name!r}: {error}") from None
        stripped = raw.rstrip(b"\r\n")
        if stripped.strip():
            masked.append(stripped)
        if secret.env is not None:
            try:
                environment[secret.env] = stripped.decode("utf-8")
            except UnicodeDecodeError:
                raise SecretUnavailableError(
                    f"job {spec.name!r}: secret {secret.name!r} is not UTF-8 text, so it "
                    "cannot be a variable (mount it as a file instead)"
                ) from None
        if secret.file is not None:
            # The file checked, by its real path: not the link, which may be swapped.
            files[secret.file] = Path(opened[0].path) if opened else path
    return LaunchSecrets(environment=environment, files=files, masked=tuple(masked))


def _env_file_check(spec: JobSpec, policy: SecretPolicy | None) -> CheckOpened | None:
    if policy is None or spec.env_file is None:
        return None
    job, path = spec.name, spec.env_file
    return lambda identify: check_env_file(job, path, policy, identify)


def _secret_check(
    job: str, field: str, name: str, policy: SecretPolicy | None, opened: list[FileId]
) -> CheckOpened | None:
    """The policy's check of a job's reading secret `name` (for `field`), or None; the
    file it passed is appended to `opened`."""
    if policy is None:
        return None

    def check(identify: Identify) -> None:
        named = identify(posixpath.join(policy.secrets_dir, name))
        check_secret(job, field, name, policy, identify)
        opened.append(named)

    return check


def missing_secrets(spec: JobSpec, secrets_dir: str) -> list[str]:
    """Names of the job's secrets that are not (readable) files here, for a warning."""
    return [
        secret.name
        for secret in spec.secrets
        if not secret_path(secrets_dir, secret.name).is_file()
    ]


def registry_of(image: str) -> str:
    """The registry host of an image reference, as Docker decides it."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


_DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io")


def registry_login(config_text: str, image: str, source: str) -> dict[str, str] | None:
    """Username and password for the image's registry from a Docker config.json, or None."""
    try:
        config = json.loads(config_text)
        auths = config.get("auths") or {}
    except (ValueError, AttributeError):
        raise SecretUnavailableError(
            f"registry auth {source} is not a Docker config.json"
        ) from None
    registry = registry_of(image)
    keys = _DOCKER_HUB_KEYS if registry == "docker.io" else (registry,)
    for key, entry in auths.items():
        host = key.removeprefix("https://").removeprefix("http://").split("/")[0]
        if key not in keys and host not in keys:
            continue
        if not isinstance(entry, dict):
            break
        if entry.get("username") and entry.get("password"):
            return {"username": str(entry["username"]), "password": str(entry["password"])}
        try:
            user, colon, password = base64.b64decode(entry.get("auth", "")).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            user, colon, password = "", "", ""
        if colon and user:
            return {"username": user, "password": password}
        raise SecretUnavailableError(
            f"registry auth {source}: the entry for {registry} has no usable credentials"
        )
    return None

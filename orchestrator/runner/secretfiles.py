"""Secrets read at launch from the service's secrets directory; env files; registry logins.

Nothing read here is written to the database, a log or a message: callers get values
to hand to the engine and to the output masker, and errors that name files, not values.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import SecretUnavailableError as SecretUnavailableError
from orchestrator.policies.secret_grants import FileId
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


def read_secret(secrets_dir: str, name: str) -> bytes:
    path = secret_path(secrets_dir, name)
    return read_regular_file(path, MAX_SECRET_BYTES, f"secret {name!r}")


def read_regular_file(path: Path | str, limit: int, what: str) -> bytes:
    """A regular file's bytes, at most `limit` of them, within READ_PATIENCE_SECONDS.

    Opened without blocking and checked before a byte is read: a FIFO, a device such as
    /dev/zero or a socket is refused at once instead of blocking or never ending.
    """
    return _within_patience(lambda: _read_regular(str(path), limit, what), what, str(path))


def _read_regular(path: str, limit: int, what: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as error:
        raise SecretUnavailableError(
            f"{what} cannot be read from {path}: {error.strerror or error}"
        ) from None
    try:
        mode = os.fstat(fd).st_mode
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


def load_launch_secrets(spec: JobSpec, secrets_dir: str) -> LaunchSecrets:
    environment: dict[str, str] = {}
    files: dict[str, Path] = {}
    masked: list[bytes] = []
    for key, value in spec.environment:
        if SECRET_LOOKING_NAME.search(key):
            masked.append(value.encode())
    if spec.env_file is not None:
        try:
            raw = read_regular_file(spec.env_file, MAX_ENV_FILE_BYTES, "env_file")
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
    for secret in spec.secrets:
        try:
            raw = read_secret(secrets_dir, secret.name)
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
            files[secret.file] = secret_path(secrets_dir, secret.name)
    return LaunchSecrets(environment=environment, files=files, masked=tuple(masked))


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

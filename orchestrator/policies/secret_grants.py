"""Which files a job may read through the service: the one secrets policy, used at
validate, apply, launch and notification delivery. Pure (the caller hands in how to
identify a file).

- The files the service's own settings read (every `*_FILE` setting, the registry auth,
  the API tokens file) are never a job's: not in `secrets:`, not in `{{secret:NAME}}`
  or a webhook's `secret:`, not as `env_file`. A file is the same when its resolved
  real path is, or (where it exists) its device and inode are: a link in the secrets
  directory, a `../` in the setting or a hard link does not hide it.
- `ORCHESTRATOR_SECRET_GRANTS` (`SECRET:JOBGLOB,...`), when set, limits each secret
  to the jobs whose names match one of its globs; a secret it does not name is no
  job's. Unset: every job may use every secret not reserved for the service.
- `env_file` is read only from the secrets directory (a secret like the others, so the
  grants hold for it) or from a directory of `ORCHESTRATOR_ALLOWED_HOST_PATHS`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from orchestrator.errors import InvalidInputError, UnsafeJobError, quote
from orchestrator.settings import (
    ALLOWED_HOST_PATHS_ENV,
    DEFAULT_SECRETS_DIR,
    SECRET_GRANTS_ENV,
    SECRETS_DIR_ENV,
)

if TYPE_CHECKING:  # (settings are checked by every command: no YAML parser for that)
    from orchestrator.spec import JobSpec


@dataclass(frozen=True)
class FileId:
    """A file as the filesystem knows it: its real path, and device and inode if it exists."""

    path: str
    inode: tuple[int, int] | None = None

    def same(self, other: FileId) -> bool:
        return self.path == other.path or (self.inode is not None and self.inode == other.inode)


# Resolves a path (links followed) to the file it names.
Identify = Callable[[str], FileId]


@dataclass(frozen=True)
class ServiceFile:
    """A file a setting of the service reads: the setting's variable, and the path."""

    setting: str
    path: str


@dataclass(frozen=True)
class Grant:
    secret: str
    jobs: str  # an fnmatch glob of job names


@dataclass(frozen=True)
class SecretPolicy:
    secrets_dir: str = DEFAULT_SECRETS_DIR
    service_files: tuple[ServiceFile, ...] = ()
    grants: tuple[Grant, ...] | None = None  # None: unset, no limit
    # Directories besides the secrets directory that env_file may lie in.
    env_file_dirs: tuple[str, ...] = ()


def parse_grants(text: str | None) -> tuple[Grant, ...] | None:
    """`SECRET:JOBGLOB` entries, comma-separated; None when unset or blank."""
    if text is None or not text.strip():
        return None
    grants = []
    for entry in text.split(","):
        secret, colon, jobs = entry.strip().partition(":")
        if not colon or not secret.strip() or not jobs.strip() or "/" in secret:
            raise InvalidInputError(
                f"{SECRET_GRANTS_ENV}: entry {quote(entry.strip())} is not SECRET:JOBGLOB "
                "(like db_password:backup-*)"
            )
        grants.append(Grant(secret.strip(), jobs.strip()))
    return tuple(grants)


def named_secrets(spec: JobSpec) -> Iterator[tuple[str, str]]:
    """(field, secret name) for every secret file the job names."""
    for index, secret in enumerate(spec.secrets):
        yield f"secrets[{index}]", secret.name
    for index, target in enumerate(spec.notify):
        for name in placeholders(target.url):
            yield f"notify[{index}].url", name
        if target.secret is not None:
            yield f"notify[{index}].secret", target.secret
    for name in placeholders(spec.ping or ""):
        yield "ping", name


def placeholders(url: str) -> list[str]:
    """The secret names of a URL's `{{secret:NAME}}` placeholders."""
    names, rest = [], url
    while "{{secret:" in rest:
        rest = rest[rest.index("{{secret:") + len("{{secret:") :]
        name, closed, rest = rest.partition("}}")
        if not closed:
            break
        names.append(name)
    return names


def check_job(spec: JobSpec, policy: SecretPolicy, identify: Identify) -> None:
    """Refuse (UnsafeJobError, one line naming job, field and setting) a job that names
    a file it may not read."""
    for field, name in named_secrets(spec):
        check_secret(spec.name, field, name, policy, identify)
    if spec.env_file is not None:
        check_env_file(spec.name, spec.env_file, policy, identify)
    check_binds(spec, policy, identify)


def check_binds(spec: JobSpec, policy: SecretPolicy, identify: Identify) -> None:
    """Refuse a bind mount that would hand over what only the service may read: the
    secrets directory or anything in it (a bind would bypass the grants), or a directory
    holding a file a setting reads (the database, the tokens file, the registry login).
    Paths as the scheduler sees them, links resolved, like the files they are matched to."""
    from orchestrator.policies.safety import WELL_KNOWN_SOCKETS, reaches_socket

    secrets_dir = identify(policy.secrets_dir).path
    for index, volume in enumerate(spec.volumes):
        if not volume.is_bind:
            continue
        source = identify(volume.source).path
        if reaches_socket(source, WELL_KNOWN_SOCKETS):
            continue  # the docker_socket grant (/var/run, /run): root, the two keys decide
        where = f"job {spec.name!r}: volumes[{index}]: {volume.source}"
        if _within(source, secrets_dir) or _within(secrets_dir, source):
            raise UnsafeJobError(
                f"{where} holds or lies in the secrets directory {policy.secrets_dir} "
                f"({SECRETS_DIR_ENV}), which no job may mount (no setting permits it): "
                "name the secrets it needs in `secrets:`"
            )
        for service_file in policy.service_files:
            if _within(source, identify(service_file.path).path):
                raise UnsafeJobError(
                    f"{where} holds {service_file.path}, the file the service's "
                    f"{service_file.setting} reads, which no job may mount (no setting "
                    "permits it): mount a directory that does not hold it"
                )


def check_secret(job: str, field: str, name: str, policy: SecretPolicy, identify: Identify) -> None:
    _not_the_services(job, field, posixpath.join(policy.secrets_dir, name), policy, identify)
    _granted(job, field, name, policy)


def check_env_file(job: str, path: str, policy: SecretPolicy, identify: Identify) -> None:
    _not_the_services(job, "env_file", path, policy, identify)
    real = identify(path).path
    secrets_dir = identify(policy.secrets_dir).path
    if _within(secrets_dir, real) and real != secrets_dir:
        _granted(job, "env_file", posixpath.relpath(real, secrets_dir), policy)
        return
    if any(_within(identify(allowed).path, real) for allowed in policy.env_file_dirs):
        return
    allowed = ",".join(policy.env_file_dirs) or "empty"
    raise UnsafeJobError(
        f"job {job!r}: env_file {path} is outside the secrets directory {policy.secrets_dir} "
        f"({SECRETS_DIR_ENV}) and {ALLOWED_HOST_PATHS_ENV} ({allowed}): put it in one, or "
        f"add its directory to {ALLOWED_HOST_PATHS_ENV}"
    )


def _not_the_services(
    job: str, field: str, path: str, policy: SecretPolicy, identify: Identify
) -> None:
    named = identify(path)
    for service_file in policy.service_files:
        if named.same(identify(service_file.path)):
            raise UnsafeJobError(
                f"job {job!r}: {field}: {path} is the file the service's {service_file.setting} "
                "reads, which no job may name (no setting permits it)"
            )


def _granted(job: str, field: str, name: str, policy: SecretPolicy) -> None:
    if policy.grants is None:
        return
    globs = [grant.jobs for grant in policy.grants if grant.secret == name]
    if any(fnmatchcase(job, glob) for glob in globs):
        return
    given = f"grants it to {','.join(globs)}" if globs else "does not name it"
    raise UnsafeJobError(
        f"job {job!r}: {field}: secret {name!r} is not granted to this job "
        f"({SECRET_GRANTS_ENV} {given}; add {name}:{job} to permit it)"
    )


def _within(parent: str, path: str) -> bool:
    return path == parent or parent == "/" or path.startswith(parent.rstrip("/") + "/")

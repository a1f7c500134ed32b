"""What every command shares: the settings it was given, and lazily opened resources."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

from orchestrator import settings
from orchestrator.errors import InvalidInputError, SchemaOutOfDateError, quote
from orchestrator.labels import RESERVED_LABELS

F = TypeVar("F", bound=Callable[..., Any])
# The tail of a run's output is held in memory (twice, while it is trimmed).
MAX_OUTPUT_LIMIT = 1024**3

if TYPE_CHECKING:
    from orchestrator.engine import DockerEngine
    from orchestrator.hostpaths import SelfContainer
    from orchestrator.operations import Operations
    from orchestrator.policies.retention import RetentionDefaults
    from orchestrator.policies.secret_grants import ServiceFile
    from orchestrator.runner import LaunchSettings, RunLauncher
    from orchestrator.store.database import Database


@dataclass
class AppContext:
    database_url: str
    port_range: str = settings.DEFAULT_PORT_RANGE
    port_host_ip: str = settings.DEFAULT_PORT_HOST_IP
    container_id: str | None = None
    output_limit: str = settings.DEFAULT_OUTPUT_LIMIT
    keep_containers: bool = False
    allow_privileged_jobs: bool = False
    container_labels: tuple[str, ...] = ()
    allowed_host_paths: tuple[str, ...] = ()
    allowed_networks: str | None = None  # ORCHESTRATOR_ALLOWED_NETWORKS, as given
    allowed_volumes: tuple[str, ...] = ()
    secrets_dir: str = settings.DEFAULT_SECRETS_DIR
    registry_auth: str | None = None
    secret_grants: str | None = None
    # Files `serve` reads by its own options (the environment's are found on their own).
    api_tokens_file: str | None = None
    health_file: str | None = None
    docker_host: str | None = None
    default_notify: str | None = None
    notify_allowed_hosts: str = ""
    # As the environment gives them (env-only settings), checked by check_settings.
    allow_low_ports: str | None = None
    unpinned_binds: str | None = None
    default_pids_limit: str | None = None
    _database: Database | None = field(default=None, repr=False)
    _checked: bool = False
    _engine: DockerEngine | None = field(default=None, repr=False)
    _where: SelfContainer | None = field(default=None, repr=False)

    def database(self, *, check_schema: bool = True, create: bool = False) -> Database:
        """The database; unless told otherwise, refused when its schema is not at head.

        Only commands that create the schema (`db upgrade`, `serve`) may create an SQLite
        file: any other command would leave an empty file behind and then refuse it.
        """
        if self._database is None:
            from orchestrator.store.database import Database

            database = Database(self.database_url)
            if database.in_memory:
                raise InvalidInputError(
                    f"database {database.display_url} is in memory, so everything written "
                    "would be gone when the command ends: name a file (sqlite:///PATH)"
                )
            if not create and not database.exists():
                raise SchemaOutOfDateError(
                    f"database {database.display_url} does not exist yet: "
                    "run 'orchestrator db upgrade'"
                )
            self._database = database
        if check_schema and not self._checked:
            from orchestrator.store import migrations

            migrations.check_schema(self._database)
            self._checked = True
        return self._database

    def engine(self, connections: int = 32) -> DockerEngine:
        """The engine, with a pool of `connections` (the service follows each run over
        a connection of its own)."""
        if self._engine is None:
            from orchestrator.engine import DockerEngine

            backend, pending = backend_settings()
            if backend == "swarm":
                from orchestrator.engine.swarm import SwarmEngine

                self._engine = SwarmEngine.from_env(
                    max_pool_size=connections, pending_timeout=pending
                )
            else:
                self._engine = DockerEngine.from_env(max_pool_size=connections)
        return self._engine

    def where(self) -> SelfContainer:
        """Where we run (host or which container), detected once per command."""
        if self._where is None:
            from orchestrator.engine.selfcontainer import locate_self

            self._where = locate_self(self.engine(), self.container_id)
        return self._where

    def check_settings(self) -> None:
        """Refuse bad settings before a command does anything (exit 2, one line)."""
        backend_settings()
        self._launch_values()

    def launch_settings(self) -> LaunchSettings:
        from orchestrator.runner import LaunchSettings

        return LaunchSettings(**self._launch_values())

    def _launch_values(self) -> dict[str, Any]:
        from orchestrator.policies.secret_grants import parse_grants
        from orchestrator.ports import parse_port_range
        from orchestrator.settings import DEFAULT_DOCKER_SOCKET, engine_socket
        from orchestrator.units import parse_size

        try:
            limit = parse_size(self.output_limit)
        except InvalidInputError as error:
            raise InvalidInputError(f"output limit: {error}") from None
        if limit > MAX_OUTPUT_LIMIT:
            raise InvalidInputError(
                f"output limit: {self.output_limit} is more than the 1g a run may keep"
            )
        try:
            ipaddress.ip_address(self.port_host_ip)
        except ValueError:
            raise InvalidInputError(
                f"port host IP {quote(self.port_host_ip)} is not an IP address "
                "(like 0.0.0.0 or 127.0.0.1)"
            ) from None
        labels = []
        for item in self.container_labels:
            key, equals, value = item.partition("=")
            if not key or not equals:
                raise InvalidInputError(f"container label {quote(item)} is not KEY=VALUE")
            if key in RESERVED_LABELS:
                raise InvalidInputError(
                    f"container label {key} is set by the orchestrator itself; choose another"
                )
            labels.append((key, value))
        for path in self.allowed_host_paths:
            if not path.startswith("/"):
                raise InvalidInputError(
                    f"allowed host path {quote(path)} is not an absolute host directory"
                )
        from orchestrator.policies.networks import parse_allowed_networks

        allowed_networks = parse_allowed_networks(self.allowed_networks)
        default_notify: tuple[Any, ...] = ()
        if self.default_notify:
            from orchestrator.spec import parse_default_notify

            default_notify = parse_default_notify(self.default_notify, settings.NOTIFY_ENV)
        from orchestrator.policies.destinations import parse_allowed_hosts

        allowed = parse_allowed_hosts(
            settings.split_list(self.notify_allowed_hosts), settings.NOTIFY_ALLOWED_HOSTS_ENV
        )
        return dict(
            allow_low_ports=_flag(self.allow_low_ports, settings.ALLOW_LOW_PORTS_ENV),
            allow_unpinned_binds=_unpinned_binds(self.unpinned_binds),
            default_pids_limit=_pids_limit(self.default_pids_limit),
            service_files=self._service_files(),
            secret_grants=parse_grants(self.secret_grants),
            default_notify=default_notify,
            notify_allowed_hosts=allowed,
            extra_labels=tuple(labels),
            output_limit=limit,
            keep_containers=self.keep_containers,
            allow_privileged_jobs=self.allow_privileged_jobs,
            allowed_host_paths=self.allowed_host_paths,
            allowed_networks=allowed_networks,
            allowed_volumes=self.allowed_volumes,
            engine_socket=engine_socket(self.docker_host),
            engine_address=self.docker_host or f"unix://{DEFAULT_DOCKER_SOCKET}",
            secrets_dir=self.secrets_dir,
            registry_auth=self.registry_auth,
            port_pool=parse_port_range(self.port_range),
            port_host_ip=self.port_host_ip,
        )

    def _service_files(self) -> tuple[ServiceFile, ...]:
        """The files our settings read, which no job may (policies/secret_grants.py)."""
        import os
        import posixpath

        from orchestrator.policies.secret_grants import ServiceFile

        files = [
            ServiceFile(variable, os.path.abspath(os.environ[variable]))
            for variable in settings.service_file_variables()
            if os.environ.get(variable)
        ]
        from orchestrator.store.sqlite_listing import sqlite_file

        database_file = sqlite_file(self.database_url)
        if database_file is not None:  # (a job holding it could write any run or job)
            files.append(ServiceFile(settings.DATABASE_URL_ENV, os.path.abspath(database_file)))
        if self.registry_auth:
            path = posixpath.join(self.secrets_dir, self.registry_auth)
            files.append(ServiceFile(settings.REGISTRY_AUTH_ENV, path))
        for variable, given in (
            (settings.API_TOKENS_FILE_ENV, self.api_tokens_file),
            (settings.HEALTH_FILE_ENV, self.health_file),
        ):
            if given:
                files.append(ServiceFile(variable, os.path.abspath(given)))
        return tuple(dict.fromkeys(files))

    def launcher(self) -> RunLauncher:
        from orchestrator.runner import RunLauncher
        from orchestrator.store.facade import Store

        return RunLauncher(
            Store(self.database()), self.engine(), self.where(), self.launch_settings()
        )

    def operations(self) -> Operations:
        """The use cases, on this command's database (checked) and engine (opened when a
        use case needs it), audited as `cli:<user>`."""
        from orchestrator.operations import Backends, Operations
        from orchestrator.store.facade import Store

        backends = Backends(
            open_store=lambda: Store(self.database()),
            engine=self.engine,
            where=self.where,
            launch_settings=self.launch_settings,
            launcher=self.launcher,
            secrets_dir=self.secrets_dir,
        )
        return Operations(backends, actor=cli_actor())

    def close(self) -> None:
        if self._database is not None:
            self._database.dispose()
        if self._engine is not None:
            self._engine.close()


pass_app = click.make_pass_decorator(AppContext)


def _flag(text: str | None, env: str) -> bool:
    value = (text or "false").strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise InvalidInputError(f"{env}: {quote(text)} is not true or false")
    return value in ("true", "1", "yes", "on")


def _unpinned_binds(text: str | None) -> bool:
    """ORCHESTRATOR_UNPINNED_BINDS: whether binds that cannot be pinned go unchecked."""
    value = (text or settings.UNPINNED_BINDS.default).strip().lower()
    if value not in ("check", "allow"):
        env = settings.UNPINNED_BINDS_ENV
        raise InvalidInputError(f"{env}: {quote(text)} is not check or allow")
    return value == "allow"


def _pids_limit(text: str | None) -> int | None:
    """The default pids limit of job containers; 0 (no limit) gives None."""
    from orchestrator.settings import MAX_PIDS

    if text is None or not text.strip():
        return settings.DEFAULT_PIDS_LIMIT.default
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 8 or int(value) > MAX_PIDS:
        raise InvalidInputError(
            f"{settings.DEFAULT_PIDS_LIMIT_ENV}: {quote(text)} is not a number of processes "
            f"(1 to {MAX_PIDS}, or 0 for no limit)"
        )
    return int(value) or None


def read_file_twin(twin: str, path: str) -> str:
    """The secret in the file a setting's `_FILE` twin names (compose and Swarm secrets)."""
    from pathlib import Path

    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise InvalidInputError(f"{twin}: cannot read {path}: {reason}") from None
    if not text:
        raise InvalidInputError(f"{twin}: {path} is empty")
    return text


def cli_actor() -> str:
    """Who a CLI write is audited as: the user running the command."""
    import getpass
    import os

    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no name for this uid (a container's arbitrary user)
        return f"cli:uid {os.getuid()}"


def backend_settings() -> tuple[str, float]:
    """ORCHESTRATOR_BACKEND and ORCHESTRATOR_SWARM_PENDING_TIMEOUT (seconds), checked."""
    import os

    from orchestrator.units import parse_duration

    backend = os.environ.get(settings.BACKEND.env, "").strip() or settings.BACKEND.default
    if backend not in settings.BACKENDS:
        raise InvalidInputError(
            f"{settings.BACKEND.env}: {quote(backend)} is not a backend "
            f"(one of {', '.join(settings.BACKENDS)})"
        )
    text = os.environ.get(settings.SWARM_PENDING_TIMEOUT.env, "").strip()
    try:
        pending = parse_duration(text or settings.SWARM_PENDING_TIMEOUT.default).total_seconds()
    except InvalidInputError as error:
        raise InvalidInputError(f"{settings.SWARM_PENDING_TIMEOUT.env}: {error}") from None
    if pending <= 0:
        raise InvalidInputError(f"{settings.SWARM_PENDING_TIMEOUT.env}: must be more than 0")
    return backend, pending


def retention_defaults() -> RetentionDefaults:
    """ORCHESTRATOR_HISTORY_KEEP, _HISTORY_MAX_AGE and _AUDIT_MAX_AGE (unset: keep all)."""
    import os

    from orchestrator.policies.retention import parse_defaults

    return parse_defaults(
        os.environ.get(settings.HISTORY_KEEP_ENV),
        os.environ.get(settings.HISTORY_MAX_AGE_ENV),
        os.environ.get(settings.AUDIT_MAX_AGE_ENV),
    )

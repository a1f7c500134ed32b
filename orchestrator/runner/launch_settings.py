"""How runs are launched: the settings every part of the runner reads (the CLI and the
service build one from their options; the defaults are the settings module's)."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.policies.destinations import AllowedHosts
from orchestrator.policies.secret_grants import Grant, SecretPolicy, ServiceFile
from orchestrator.ports import PortRange, parse_port_range
from orchestrator.runner.heartbeats import HEARTBEAT_SECONDS
from orchestrator.settings import (
    DEFAULT_DOCKER_SOCKET,
    DEFAULT_MAX_PARALLEL_LAUNCHES,
    DEFAULT_OUTPUT_LIMIT,
    DEFAULT_PIDS_LIMIT,
    DEFAULT_PORT_HOST_IP,
    DEFAULT_PORT_RANGE,
    DEFAULT_SECRETS_DIR,
)
from orchestrator.spec import NotifySpec
from orchestrator.units import parse_size

DEFAULT_PORT_POOL = parse_port_range(DEFAULT_PORT_RANGE)


@dataclass(frozen=True)
class LaunchSettings:
    output_limit: int = parse_size(DEFAULT_OUTPUT_LIMIT)
    keep_containers: bool = False
    allow_privileged_jobs: bool = False
    # Jobs may pin host ports below 1024 (policies/hostports.py).
    allow_low_ports: bool = False
    # Binds the scheduler cannot pin go to the engine unchecked (policies/unpinned_binds.py).
    allow_unpinned_binds: bool = False
    # The pids limit of a job container whose job sets none (None: no limit).
    default_pids_limit: int | None = DEFAULT_PIDS_LIMIT.default
    # Host directories that bind sources must lie in (empty: anywhere but /).
    allowed_host_paths: tuple[str, ...] = ()
    # Networks jobs may join besides bridge and none (empty: any but the scheduler's own).
    allowed_networks: tuple[str, ...] = ()
    # Named volumes jobs may mount (empty: any but the scheduler's and its stack's).
    allowed_volumes: tuple[str, ...] = ()
    # The engine's unix socket as this process sees it; None when reached over TCP.
    engine_socket: str | None = DEFAULT_DOCKER_SOCKET
    engine_address: str = f"unix://{DEFAULT_DOCKER_SOCKET}"
    secrets_dir: str = DEFAULT_SECRETS_DIR
    # A Docker config.json in the secrets directory, by name: logins for pulls.
    registry_auth: str | None = None
    # Files the service's settings read (no job may), and ORCHESTRATOR_SECRET_GRANTS.
    service_files: tuple[ServiceFile, ...] = ()
    secret_grants: tuple[Grant, ...] | None = None
    port_pool: PortRange = DEFAULT_PORT_POOL
    port_host_ip: str = DEFAULT_PORT_HOST_IP
    stop_grace_seconds: int = 10
    # A run past its timeout whose container the engine has not stopped this much later
    # (a kill that does not return, a wedged engine) is recorded timed_out all the same.
    kill_grace_seconds: float = 30.0
    # How often a pool port the engine calls "already allocated" is swapped for another.
    port_attempts: int = 20
    # Put on every job container besides ours (for log shippers, cost tags, tests).
    extra_labels: tuple[tuple[str, str], ...] = ()
    # How long a run about to start waits for an engine that does not answer (the
    # service: a restart of dockerd delays fires instead of failing them; the CLI: 0).
    engine_patience_seconds: float = 0
    # Told of the runs of jobs that name no `notify:` of their own (ORCHESTRATOR_NOTIFY).
    default_notify: tuple[NotifySpec, ...] = ()
    # Loopback or link-local hosts notifications may reach (ORCHESTRATOR_NOTIFY_ALLOWED_HOSTS).
    notify_allowed_hosts: AllowedHosts = field(default_factory=AllowedHosts)
    max_parallel_launches: int = DEFAULT_MAX_PARALLEL_LAUNCHES
    # How often the runs this process holds are beaten for (the service: at most a third
    # of --adopt-after).
    heartbeat_seconds: float = HEARTBEAT_SECONDS

    @property
    def secret_policy(self) -> SecretPolicy:
        """Which files jobs may read through the service (policies/secret_grants.py)."""
        return SecretPolicy(
            secrets_dir=self.secrets_dir,
            service_files=self.service_files,
            grants=self.secret_grants,
            env_file_dirs=self.allowed_host_paths,
        )

"""Settings: their names, environment variables and defaults. Only this module and the
CLI read the environment; everything else receives values as arguments."""

from __future__ import annotations

DATABASE_URL_ENV = "ORCHESTRATOR_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///orchestrator.db"
# How long an SQLite connection waits for another's write lock before it fails.
SQLITE_BUSY_TIMEOUT_MS = 30_000

PORT_RANGE_ENV = "ORCHESTRATOR_PORT_RANGE"
DEFAULT_PORT_RANGE = "20000-20999"

PORT_HOST_IP_ENV = "ORCHESTRATOR_PORT_HOST_IP"
DEFAULT_PORT_HOST_IP = "0.0.0.0"

CONTAINER_ID_ENV = "ORCHESTRATOR_CONTAINER_ID"

OUTPUT_LIMIT_ENV = "ORCHESTRATOR_OUTPUT_LIMIT"
DEFAULT_OUTPUT_LIMIT = "1MiB"

KEEP_CONTAINERS_ENV = "ORCHESTRATOR_KEEP_CONTAINERS"
ALLOW_PRIVILEGED_JOBS_ENV = "ORCHESTRATOR_ALLOW_PRIVILEGED_JOBS"
CONTAINER_LABELS_ENV = "ORCHESTRATOR_CONTAINER_LABELS"
SHUTDOWN_GRACE_ENV = "ORCHESTRATOR_SHUTDOWN_GRACE"
HEALTH_FILE_ENV = "ORCHESTRATOR_HEALTH_FILE"
DEFAULT_HEALTH_FILE = "/tmp/orchestrator-health.json"
LOG_FORMAT_ENV = "ORCHESTRATOR_LOG_FORMAT"
LOG_LEVEL_ENV = "ORCHESTRATOR_LOG_LEVEL"
ADOPT_AFTER_ENV = "ORCHESTRATOR_ADOPT_AFTER"
DEFAULT_ADOPT_AFTER = "30s"
DEFAULT_HEALTH_MAX_AGE = "30s"
ALLOWED_HOST_PATHS_ENV = "ORCHESTRATOR_ALLOWED_HOST_PATHS"
SECRETS_DIR_ENV = "ORCHESTRATOR_SECRETS_DIR"
DEFAULT_SECRETS_DIR = "/run/secrets"
REGISTRY_AUTH_ENV = "ORCHESTRATOR_REGISTRY_AUTH"
DOCKER_HOST_ENV = "DOCKER_HOST"
DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock"
NOTIFY_ENV = "ORCHESTRATOR_NOTIFY"
HTTP_ENV = "ORCHESTRATOR_HTTP"
API_TOKEN_ENV = "ORCHESTRATOR_API_TOKEN"
API_TOKENS_FILE_ENV = "ORCHESTRATOR_API_TOKENS_FILE"
HTTP_READ_OPEN_ENV = "ORCHESTRATOR_HTTP_READ_OPEN"
METRICS_NEED_TOKEN_ENV = "ORCHESTRATOR_METRICS_NEED_TOKEN"
METRICS_PER_JOB_ENV = "ORCHESTRATOR_METRICS_PER_JOB_HISTOGRAMS"
# The service's address as its users reach it (a reverse proxy's): links in notifications.
PUBLIC_URL_ENV = "ORCHESTRATOR_PUBLIC_URL"
MAX_PARALLEL_LAUNCHES_ENV = "ORCHESTRATOR_MAX_PARALLEL_LAUNCHES"
# Create and start calls in flight at once (and as many removes): on a small host the
# engine does not start containers faster with more, it answers each call later
# (benchmarks/RESULTS.md).
DEFAULT_MAX_PARALLEL_LAUNCHES = 4
MAX_RUNNING_ENV = "ORCHESTRATOR_MAX_RUNNING"
# Runs followed at once by one service: each costs a thread and an engine connection.
DEFAULT_MAX_RUNNING = 200
# Settings that hold a secret may instead name a file that holds it (compose and Swarm
# secrets): the variable with this suffix.
FILE_SUFFIX = "_FILE"


def engine_socket(docker_host: str | None) -> str | None:
    """The engine's unix socket path that DOCKER_HOST names; None for tcp://, ssh://."""
    if not docker_host:
        return DEFAULT_DOCKER_SOCKET
    if docker_host.startswith("unix://"):
        return docker_host.removeprefix("unix://") or DEFAULT_DOCKER_SOCKET
    return None


def split_list(value: str | None) -> tuple[str, ...]:
    """A comma-separated list setting, blanks dropped."""
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())

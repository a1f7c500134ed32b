"""Settings: one row each (option name, environment variable, default, help), and the
service's tunables. Only this module and the CLI read the environment; everything else
receives values as arguments. cli/options.py turns a row into its command-line option."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# Settings that hold a secret may instead name a file that holds it (compose and Swarm
# secrets): the variable with this suffix.
FILE_SUFFIX = "_FILE"


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One setting. `name` is its option's (`--name`); `secret` settings may be read
    from the file their `env + FILE_SUFFIX` twin names. A `help` of "" means the
    setting has no option of its own (it is read from the environment only)."""

    name: str
    env: str
    default: T
    help: str
    secret: bool = False


DATABASE_URL: Setting[str] = Setting(
    "database-url",
    "ORCHESTRATOR_DATABASE_URL",
    "sqlite:///orchestrator.db",
    "Where jobs and run history live: sqlite:///PATH or postgresql://USER:PASS@HOST/DB.",
    secret=True,
)
PORT_RANGE: Setting[str] = Setting(
    "port-range",
    "ORCHESTRATOR_PORT_RANGE",
    "20000-20999",
    "Host ports leased to jobs that publish a port without pinning one.",
)
PORT_HOST_IP: Setting[str] = Setting(
    "port-host-ip",
    "ORCHESTRATOR_PORT_HOST_IP",
    "0.0.0.0",
    "Host address that leased ports are published on.",
)
CONTAINER_ID: Setting[str | None] = Setting(
    "container-id",
    "ORCHESTRATOR_CONTAINER_ID",
    None,
    "This scheduler's own container (id or name), when detection cannot find it.",
)
OUTPUT_LIMIT: Setting[str] = Setting(
    "output-limit",
    "ORCHESTRATOR_OUTPUT_LIMIT",
    "1MiB",
    "How much of each run's output (the tail) is kept in the history.",
)
KEEP_CONTAINERS: Setting[bool] = Setting(
    "keep-containers",
    "ORCHESTRATOR_KEEP_CONTAINERS",
    False,
    "Keep job containers after their run, for debugging (they are removed otherwise).",
)
ALLOWED_HOST_PATHS: Setting[str] = Setting(
    "allowed-host-paths",
    "ORCHESTRATOR_ALLOWED_HOST_PATHS",
    "",
    "Host directories that jobs' bind mounts must lie in (comma-separated; "
    "empty: any directory but /).",
)
# Bind sources the scheduler cannot pin (policies/unpinned_binds.py): `check` refuses
# one a non-root user could swap for a link; `allow` accepts that risk. Environment only.
UNPINNED_BINDS: Setting[str] = Setting("unpinned-binds", "ORCHESTRATOR_UNPINNED_BINDS", "check", "")
# Networks jobs may join (comma-separated; see policies/networks.py). Environment only.
ALLOWED_NETWORKS: Setting[str] = Setting(
    "allowed-networks", "ORCHESTRATOR_ALLOWED_NETWORKS", "", ""
)
ALLOWED_VOLUMES: Setting[str] = Setting(
    "allowed-volumes",
    "ORCHESTRATOR_ALLOWED_VOLUMES",
    "",
    "",
)
SECRETS_DIR: Setting[str] = Setting(
    "secrets-dir",
    "ORCHESTRATOR_SECRETS_DIR",
    "/run/secrets",
    "Where the files named by jobs' `secrets:` are read at launch.",
)
REGISTRY_AUTH: Setting[str | None] = Setting(
    "registry-auth",
    "ORCHESTRATOR_REGISTRY_AUTH",
    None,
    "A Docker config.json in the secrets directory (by name) with registry logins for pulls.",
)
# Read from the environment only (no option): who may use which secret.
SECRET_GRANTS: Setting[str | None] = Setting(
    "secret-grants", "ORCHESTRATOR_SECRET_GRANTS", None, ""
)
CONTAINER_LABELS: Setting[tuple[str, ...]] = Setting(
    "container-label",
    "ORCHESTRATOR_CONTAINER_LABELS",
    (),
    "An extra label for every job container (repeat it; the variable takes a "
    "space-separated list).",
)
NOTIFY: Setting[str | None] = Setting("notify", "ORCHESTRATOR_NOTIFY", None, "")
# Hosts and networks that notifications may reach although loopback or link-local.
NOTIFY_ALLOWED_HOSTS: Setting[str] = Setting(
    "notify-allowed-hosts", "ORCHESTRATOR_NOTIFY_ALLOWED_HOSTS", "", ""
)
DOCKER_HOST: Setting[str | None] = Setting("docker-host", "DOCKER_HOST", None, "")

# `serve` and `health`.
MAX_PARALLEL_LAUNCHES: Setting[int] = Setting(
    "max-parallel-launches",
    "ORCHESTRATOR_MAX_PARALLEL_LAUNCHES",
    # Create and start calls in flight at once (and as many removes): on a small host
    # the engine does not start containers faster with more, it answers each call later
    # (benchmarks/RESULTS.md).
    4,
    "Container create and start calls in flight at once (and as many removes); "
    "fires beyond what the engine takes wait, in order of due time, as pending runs.",
)
MAX_RUNNING: Setting[int] = Setting(
    "max-running",
    "ORCHESTRATOR_MAX_RUNNING",
    # Runs followed at once by one service: each costs a thread and an engine connection.
    200,
    "Runs this service follows at once (a thread and an engine connection each); "
    "more wait to start.",
)
# The service's address as its users reach it (a reverse proxy's): links in notifications.
PUBLIC_URL: Setting[str | None] = Setting(
    "public-url",
    "ORCHESTRATOR_PUBLIC_URL",
    None,
    "The dashboard's address as users reach it (https://cron.example.org): "
    "notifications link to the run's page there.",
)
SHUTDOWN_GRACE: Setting[str] = Setting(
    "shutdown-grace",
    "ORCHESTRATOR_SHUTDOWN_GRACE",
    "0s",
    "On SIGTERM, wait this long for runs in flight (0: leave "
    "them running, to be reattached by the next start).",
)
HEALTH_FILE: Setting[str] = Setting(
    "health-file",
    "ORCHESTRATOR_HEALTH_FILE",
    "/tmp/orchestrator-health.json",
    "Refreshed every few seconds by the scheduler loop; `orchestrator health` reads it.",
)
ADOPT_AFTER: Setting[str] = Setting(
    "adopt-after",
    "ORCHESTRATOR_ADOPT_AFTER",
    "30s",
    "Adopt a run whose scheduler has not sent a heartbeat for this long.",
)
LOG_FORMAT: Setting[str] = Setting(
    "log-format", "ORCHESTRATOR_LOG_FORMAT", "text", "Log lines as text or JSON."
)
LOG_LEVEL: Setting[str] = Setting("log-level", "ORCHESTRATOR_LOG_LEVEL", "info", "")
API_TOKEN: Setting[str | None] = Setting(
    "api-token", "ORCHESTRATOR_API_TOKEN", None, "", secret=True
)
API_TOKENS_FILE: Setting[str | None] = Setting(
    "api-tokens-file",
    "ORCHESTRATOR_API_TOKENS_FILE",
    None,
    "API tokens, one 'name:token[:read]' a line (a token's name is what the audit shows).",
)
HTTP: Setting[str | None] = Setting(
    "http",
    "ORCHESTRATOR_HTTP",
    None,
    "Serve the HTTP API, /metrics, /healthz and /readyz here (off by default). Tokens: "
    f"{API_TOKEN.env} (or {API_TOKEN.env}{FILE_SUFFIX}) and "
    f"{API_TOKENS_FILE.env}; without one it serves only on a loopback address.",
)
HTTP_READ_OPEN: Setting[bool] = Setting(
    "http-read-open",
    "ORCHESTRATOR_HTTP_READ_OPEN",
    False,
    "Let the API's reads (jobs, runs, ports, audit) be made without a token.",
)
HTTP_ALLOWED_HOSTS: Setting[str] = Setting(
    "http-allowed-hosts",
    "ORCHESTRATOR_HTTP_ALLOWED_HOSTS",
    "",
    "Host names the HTTP API answers to besides IP addresses, localhost and the public "
    "URL's (comma-separated; *.example.org for subdomains, * for any): others get 421.",
)
HTTP_STREAMS_PER_CLIENT: Setting[int] = Setting(
    "http-streams-per-client",
    "ORCHESTRATOR_HTTP_STREAMS_PER_CLIENT",
    20,
    "Live log streams one API token (or, for open reads, one address) may hold open; past it 429.",
)
HTTP_MAX_STREAMS: Setting[int] = Setting(
    "http-max-streams",
    "ORCHESTRATOR_HTTP_MAX_STREAMS",
    500,
    "Live log streams the HTTP server holds open in all (past it 503), beside the "
    "200 requests it serves at once.",
)
METRICS_NEED_TOKEN: Setting[bool] = Setting(
    "metrics-need-token",
    "ORCHESTRATOR_METRICS_NEED_TOKEN",
    False,
    "Serve /metrics only to a request with a token (read tokens do).",
)
METRICS_PER_JOB_HISTOGRAMS: Setting[bool] = Setting(
    "metrics-per-job-histograms",
    "ORCHESTRATOR_METRICS_PER_JOB_HISTOGRAMS",
    False,
    "Give the duration and lateness histograms a job_name label (a series per job "
    "and bucket: mind the count with many jobs).",
)
ALLOW_PRIVILEGED_JOBS: Setting[bool] = Setting(
    "allow-privileged-jobs",
    "ORCHESTRATOR_ALLOW_PRIVILEGED_JOBS",
    False,
    # Each command that takes it adds who the permission reaches (cli/options.py).
    "Permit jobs that ask for privileged, host_network (or network: host), "
    "host_pid or docker_socket (or a volume that reaches the engine's socket).",
)
# Env-only: read by every command (validate, apply and the launch all apply them).
ALLOW_LOW_PORTS: Setting[bool] = Setting(
    "allow-low-ports", "ORCHESTRATOR_ALLOW_LOW_PORTS", False, ""
)
# Processes (and threads) a job container may hold at once, unless its job says
# `resources.pids`: a fork bomb stays in its container. 0: no limit.
# Linux's largest pid_max: a pids limit above it limits nothing.
MAX_PIDS = 4_194_304
DEFAULT_PIDS_LIMIT: Setting[int] = Setting(
    "default-pids-limit", "ORCHESTRATOR_DEFAULT_PIDS_LIMIT", 1024, ""
)
# Env-only: run history the service keeps (jobs' `history:` win); empty: keep everything.
HISTORY_KEEP: Setting[str] = Setting("history-keep", "ORCHESTRATOR_HISTORY_KEEP", "", "")
HISTORY_MAX_AGE: Setting[str] = Setting("history-max-age", "ORCHESTRATOR_HISTORY_MAX_AGE", "", "")
# Env-only: audit entries older than this are pruned; empty: the audit is kept for ever.
AUDIT_MAX_AGE: Setting[str] = Setting("audit-max-age", "ORCHESTRATOR_AUDIT_MAX_AGE", "", "")

# Where runs go: docker (containers on this engine) or swarm (replicated-job services on
# the swarm this engine manages; engine/swarm). Environment only.
BACKEND: Setting[str] = Setting("backend", "ORCHESTRATOR_BACKEND", "docker", "")
BACKENDS = ("docker", "swarm")
# How long a Swarm task may stay unplaced (no node fits, image missing) before its run fails.
SWARM_PENDING_TIMEOUT: Setting[str] = Setting(
    "swarm-pending-timeout", "ORCHESTRATOR_SWARM_PENDING_TIMEOUT", "5m", ""
)

# Jobs from container labels (service/label_jobs.py). Environment only.
# on: read them under the label policy; trusted: as job files; off: ignore labels.
LABEL_JOBS: Setting[str] = Setting("label-jobs", "ORCHESTRATOR_LABEL_JOBS", "on", "")
# Only containers carrying all these labels (comma-separated key=value); empty: any.
LABEL_FILTER: Setting[str] = Setting("label-filter", "ORCHESTRATOR_LABEL_FILTER", "", "")
# The label readers that run (comma-separated prefixes; see policies/label_jobs.py).
LABEL_PREFIXES: Setting[str] = Setting(
    "label-prefixes", "ORCHESTRATOR_LABEL_PREFIXES", "orchestrator", ""
)

SETTINGS: tuple[Setting[Any], ...] = (
    DATABASE_URL,
    PORT_RANGE,
    PORT_HOST_IP,
    CONTAINER_ID,
    OUTPUT_LIMIT,
    KEEP_CONTAINERS,
    BACKEND,
    SWARM_PENDING_TIMEOUT,
    ALLOWED_HOST_PATHS,
    UNPINNED_BINDS,
    ALLOWED_NETWORKS,
    ALLOWED_VOLUMES,
    SECRETS_DIR,
    REGISTRY_AUTH,
    SECRET_GRANTS,
    CONTAINER_LABELS,
    NOTIFY,
    NOTIFY_ALLOWED_HOSTS,
    DOCKER_HOST,
    MAX_PARALLEL_LAUNCHES,
    MAX_RUNNING,
    PUBLIC_URL,
    SHUTDOWN_GRACE,
    HEALTH_FILE,
    ADOPT_AFTER,
    LOG_FORMAT,
    LOG_LEVEL,
    API_TOKEN,
    API_TOKENS_FILE,
    HTTP,
    HTTP_READ_OPEN,
    HTTP_ALLOWED_HOSTS,
    HTTP_STREAMS_PER_CLIENT,
    HTTP_MAX_STREAMS,
    METRICS_NEED_TOKEN,
    METRICS_PER_JOB_HISTOGRAMS,
    ALLOW_PRIVILEGED_JOBS,
    ALLOW_LOW_PORTS,
    DEFAULT_PIDS_LIMIT,
    HISTORY_KEEP,
    HISTORY_MAX_AGE,
    AUDIT_MAX_AGE,
    LABEL_JOBS,
    LABEL_FILTER,
    LABEL_PREFIXES,
)

# Tunables, not settings: each is a figure in one place.
# How long an SQLite connection waits for another's write lock before it fails.
SQLITE_BUSY_TIMEOUT_MS = 30_000
# How long a run (or a fire that comes while the engine is away) waits for an engine
# that went away before giving up.
ENGINE_PATIENCE_SECONDS = 600
# An idle worker wakes this often, so that its health beat shows it is alive.
IDLE_BEAT_SECONDS = 1.0
DEFAULT_HEALTH_MAX_AGE = "30s"
DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock"

# The names the rest of the package imports, from the rows above.
DATABASE_URL_ENV = DATABASE_URL.env
DEFAULT_DATABASE_URL = DATABASE_URL.default
PORT_RANGE_ENV = PORT_RANGE.env
DEFAULT_PORT_RANGE = PORT_RANGE.default
PORT_HOST_IP_ENV = PORT_HOST_IP.env
DEFAULT_PORT_HOST_IP = PORT_HOST_IP.default
CONTAINER_ID_ENV = CONTAINER_ID.env
OUTPUT_LIMIT_ENV = OUTPUT_LIMIT.env
DEFAULT_OUTPUT_LIMIT = OUTPUT_LIMIT.default
KEEP_CONTAINERS_ENV = KEEP_CONTAINERS.env
ALLOW_PRIVILEGED_JOBS_ENV = ALLOW_PRIVILEGED_JOBS.env
CONTAINER_LABELS_ENV = CONTAINER_LABELS.env
SHUTDOWN_GRACE_ENV = SHUTDOWN_GRACE.env
HEALTH_FILE_ENV = HEALTH_FILE.env
DEFAULT_HEALTH_FILE = HEALTH_FILE.default
LOG_FORMAT_ENV = LOG_FORMAT.env
LOG_LEVEL_ENV = LOG_LEVEL.env
ADOPT_AFTER_ENV = ADOPT_AFTER.env
DEFAULT_ADOPT_AFTER = ADOPT_AFTER.default
ALLOWED_HOST_PATHS_ENV = ALLOWED_HOST_PATHS.env
ALLOWED_NETWORKS_ENV = ALLOWED_NETWORKS.env
UNPINNED_BINDS_ENV = UNPINNED_BINDS.env
ALLOWED_VOLUMES_ENV = ALLOWED_VOLUMES.env
SECRETS_DIR_ENV = SECRETS_DIR.env
DEFAULT_SECRETS_DIR = SECRETS_DIR.default
REGISTRY_AUTH_ENV = REGISTRY_AUTH.env
SECRET_GRANTS_ENV = SECRET_GRANTS.env
DOCKER_HOST_ENV = DOCKER_HOST.env
NOTIFY_ENV = NOTIFY.env
NOTIFY_ALLOWED_HOSTS_ENV = NOTIFY_ALLOWED_HOSTS.env
HTTP_ENV = HTTP.env
API_TOKEN_ENV = API_TOKEN.env
API_TOKENS_FILE_ENV = API_TOKENS_FILE.env
HTTP_READ_OPEN_ENV = HTTP_READ_OPEN.env
HTTP_ALLOWED_HOSTS_ENV = HTTP_ALLOWED_HOSTS.env
ALLOW_LOW_PORTS_ENV = ALLOW_LOW_PORTS.env
DEFAULT_PIDS_LIMIT_ENV = DEFAULT_PIDS_LIMIT.env
METRICS_NEED_TOKEN_ENV = METRICS_NEED_TOKEN.env
METRICS_PER_JOB_ENV = METRICS_PER_JOB_HISTOGRAMS.env
PUBLIC_URL_ENV = PUBLIC_URL.env
MAX_PARALLEL_LAUNCHES_ENV = MAX_PARALLEL_LAUNCHES.env
DEFAULT_MAX_PARALLEL_LAUNCHES = MAX_PARALLEL_LAUNCHES.default
MAX_RUNNING_ENV = MAX_RUNNING.env
HISTORY_KEEP_ENV = HISTORY_KEEP.env
HISTORY_MAX_AGE_ENV = HISTORY_MAX_AGE.env
AUDIT_MAX_AGE_ENV = AUDIT_MAX_AGE.env
DEFAULT_MAX_RUNNING = MAX_RUNNING.default
# The largest env_file read at launch (a job's file, read by the service).
MAX_ENV_FILE_BYTES = 1024 * 1024


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


def service_file_variables() -> tuple[str, ...]:
    """The variables that name a file the service reads: every `*_FILE` setting and
    every secret setting's `_FILE` twin (no job may name those files)."""
    own = [row.env for row in SETTINGS if row.env.endswith(FILE_SUFFIX)]
    twins = [row.env + FILE_SUFFIX for row in SETTINGS if row.secret]
    return tuple(dict.fromkeys((*own, *twins)))

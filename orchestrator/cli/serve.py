"""`orchestrator serve` and `orchestrator health`."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from orchestrator import settings
from orchestrator.cli.context import AppContext, pass_app
from orchestrator.cli.options import (
    allow_privileged_option,
    health_file_option,
    secret_from_env,
    setting_option,
)
from orchestrator.errors import DatabaseUnavailableError, InvalidInputError
from orchestrator.units import parse_duration

if TYPE_CHECKING:
    from orchestrator.api.auth import ApiSettings
    from orchestrator.api.server import HttpServer
    from orchestrator.engine import DockerEngine
    from orchestrator.service.label_jobs import LabelDiscovery
    from orchestrator.service.scheduler import SchedulerService

DATABASE_WAIT_SECONDS = 60
# A scheduler started while the engine restarts (or before it is up) waits this long.
ENGINE_WAIT_SECONDS = 120


def _upgrade_when_reachable(app: AppContext) -> None:
    """Migrate on start; a database that is still starting (compose) is waited for."""
    from orchestrator.store import migrations

    database = app.database(check_schema=False, create=True)
    deadline = time.monotonic() + DATABASE_WAIT_SECONDS
    delay = 0.5
    while True:
        try:
            migrations.upgrade(database)
            return
        except DatabaseUnavailableError as error:
            if time.monotonic() > deadline:
                raise
            click.echo(f"waiting for the database: {error}", err=True)
            time.sleep(delay)
            delay = min(delay * 2, 5)


def _engine_when_reachable(app: AppContext, connections: int) -> DockerEngine:
    """The engine and where we run in it; an engine that is restarting, or not up yet
    (its socket not there), is waited for instead of exiting (the chaos soak started a
    scheduler again during an engine restart: it exited 1)."""
    from orchestrator.backoff import with_backoff
    from orchestrator.engine.errors import EngineUnavailableError

    def reach() -> DockerEngine:
        engine = app.engine(connections=connections)
        app.where()
        return engine

    return with_backoff(
        reach,
        retry_on=EngineUnavailableError,
        patience_seconds=ENGINE_WAIT_SECONDS,
        what="waiting for the engine",
    )


def _seconds(text: str, what: str) -> float:
    if text.strip() in ("0", "0s"):
        return 0.0
    try:
        return parse_duration(text).total_seconds()
    except InvalidInputError as error:
        raise InvalidInputError(f"{what}: {error}") from None


def _positive_seconds(text: str, what: str) -> float:
    """A duration that must be more than zero (0 would adopt every run at once)."""
    try:
        return parse_duration(text).total_seconds()
    except InvalidInputError as error:
        raise InvalidInputError(f"{what}: {error}") from None


@click.command()
@click.option(
    "--jobs",
    "jobs_dir",
    type=click.Path(path_type=Path),
    help="Apply the job files in this folder at start (an idempotent upsert).",
)
@setting_option(settings.MAX_PARALLEL_LAUNCHES, type=click.IntRange(1, 64))
@setting_option(settings.MAX_RUNNING, type=click.IntRange(1, 10_000))
@setting_option(settings.PUBLIC_URL)
@setting_option(settings.SHUTDOWN_GRACE)
@health_file_option
@setting_option(settings.ADOPT_AFTER)
@setting_option(settings.LOG_FORMAT, type=click.Choice(["text", "json"]))
@setting_option(settings.LOG_LEVEL, type=click.Choice(["debug", "info", "warning", "error"]))
@setting_option(settings.HTTP, metavar="HOST:PORT")
@setting_option(settings.API_TOKENS_FILE, type=click.Path(path_type=str))
@setting_option(settings.HTTP_READ_OPEN)
@setting_option(settings.HTTP_ALLOWED_HOSTS, metavar="NAME,NAME")
@setting_option(settings.HTTP_STREAMS_PER_CLIENT, type=click.IntRange(1, 10_000))
@setting_option(settings.HTTP_MAX_STREAMS, type=click.IntRange(1, 10_000))
@setting_option(settings.METRICS_NEED_TOKEN)
@setting_option(settings.METRICS_PER_JOB_HISTOGRAMS)
@allow_privileged_option("Such a job controls the host.")
@pass_app
def serve(
    app: AppContext,
    jobs_dir: Path | None,
    max_parallel_launches: int,
    max_running: int,
    public_url: str | None,
    shutdown_grace: str,
    health_file: Path,
    adopt_after: str,
    log_format: str,
    log_level: str,
    http: str | None,
    api_tokens_file: str | None,
    http_read_open: bool,
    http_allowed_hosts: str,
    http_streams_per_client: int,
    http_max_streams: int,
    metrics_need_token: bool,
    metrics_per_job_histograms: bool,
    allow_privileged_jobs: bool,
) -> None:
    """Run the scheduler service in the foreground: every enabled job fires on its
    schedule as a sibling container. SIGTERM or SIGINT stops it gracefully.

    It migrates the database on start, applies --jobs if given, releases stale port
    leases, adopts runs left by a scheduler that died, and catches up missed fires.

    Example: orchestrator serve --jobs /etc/orchestrator/jobs
    """
    from orchestrator.cli.context import retention_defaults
    from orchestrator.logsetup import configure_logging
    from orchestrator.operations.jobs import refuse_untrusted_files
    from orchestrator.service.scheduler import SchedulerService, ServiceSettings
    from orchestrator.spec import load_jobs
    from orchestrator.store.facade import Store

    configure_logging(log_format, log_level)
    app.allow_privileged_jobs = allow_privileged_jobs
    app.api_tokens_file = api_tokens_file
    app.health_file = str(health_file)
    grace = _seconds(shutdown_grace, "shutdown grace")
    retention = retention_defaults()
    adopt_after_seconds = _positive_seconds(adopt_after, "adopt after")
    if public_url is not None and not public_url.startswith(("http://", "https://")):
        raise InvalidInputError(f"--public-url {public_url!r} is not an http:// or https:// URL")
    listen = _http_settings(http, api_tokens_file, http_read_open, metrics_need_token)
    if listen is not None:
        listen.api = replace(
            _web_settings(listen.api, public_url, http_allowed_hosts),
            streams_per_client=http_streams_per_client,
            max_streams=http_max_streams,
        )
    loaded = load_jobs([jobs_dir]) if jobs_dir is not None else []
    refuse_untrusted_files(loaded, app.launch_settings())
    _upgrade_when_reachable(app)
    if jobs_dir is not None:
        result = Store(app.database()).apply_jobs(loaded)
        click.echo(
            f"applied {jobs_dir}: {len(result.created)} created, "
            f"{len(result.updated)} updated, {len(result.unchanged)} unchanged",
            err=True,
        )
    engine = _engine_when_reachable(app, max_running + max_parallel_launches + 16)
    service = SchedulerService(
        Store(app.database()),
        engine,
        app.where(),
        replace(
            app.launch_settings(),
            engine_patience_seconds=settings.ENGINE_PATIENCE_SECONDS,
            max_parallel_launches=max_parallel_launches,
        ),
        ServiceSettings(
            shutdown_grace_seconds=grace,
            health_file=health_file,
            stale_after_seconds=adopt_after_seconds,
            max_running=max_running,
            public_url=public_url,
            retention=retention,
        ),
    )

    labels = _label_discovery(app, engine)
    if labels is not None:
        labels.reconcile()  # before the service recovers: the jobs as the engine has them
        labels.start()
    server = None
    if listen is not None:
        server = _start_http(app, service, listen, metrics_per_job_histograms)
        click.echo(f"HTTP API listening on {server.url}", err=True)

    def on_signal(number: int, _frame: FrameType | None) -> None:
        service.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        service.run_forever()
    finally:
        if labels is not None:
            labels.stop()
        if server is not None:
            server.stop()


def _label_discovery(app: AppContext, engine: DockerEngine) -> LabelDiscovery | None:
    """Jobs from container labels, as ORCHESTRATOR_LABEL_* say (None: off)."""
    from orchestrator.operations.jobs import refuse_untrusted_files
    from orchestrator.policies.label_jobs import parse_filter, parse_mode, parse_prefixes
    from orchestrator.service.label_jobs import LabelDiscovery, LabelSettings
    from orchestrator.store.facade import Store

    def read(setting: settings.Setting[str]) -> str:
        return os.environ.get(setting.env) or setting.default

    try:
        mode = parse_mode(read(settings.LABEL_JOBS))
        wanted = parse_filter(read(settings.LABEL_FILTER))
        prefixes = parse_prefixes(read(settings.LABEL_PREFIXES))
    except ValueError as error:
        raise InvalidInputError(str(error)) from None
    if mode == "off":
        return None
    launch = app.launch_settings()
    return LabelDiscovery(
        Store(app.database()),
        engine,
        LabelSettings(mode=mode, filter=wanted, prefixes=prefixes),
        file_check=lambda job: refuse_untrusted_files([job], launch),
    )


def _health_over_http(url: str) -> None:
    import urllib.error
    import urllib.request

    if not url.startswith(("http://", "https://")):
        raise InvalidInputError(f"--url {url!r} is not an http:// or https:// URL")
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        try:
            reason = json.loads(error.read()).get("error", error.reason)
        except (ValueError, AttributeError):
            reason = error.reason
        click.echo(f"{reason} (HTTP {error.code})", err=True)
        raise SystemExit(1) from None
    except (OSError, ValueError) as error:
        click.echo(f"unhealthy: cannot reach {url}: {getattr(error, 'reason', error)}", err=True)
        raise SystemExit(1) from None
    loops = ", ".join(f"{name} {age}s ago" for name, age in body.get("loops", {}).items())
    click.echo(f"healthy: {loops}" if loops else "healthy")


@dataclass
class _Listen:
    host: str
    port: int
    api: ApiSettings


def _http_settings(
    http: str | None, tokens_file: str | None, read_open: bool, metrics_need_token: bool
) -> _Listen | None:
    """Checked before anything starts: the address, the tokens, and the rule that an API
    on a non-loopback address needs a token."""
    if not http:
        return None
    from orchestrator.api.auth import is_loopback, load_tokens, parse_listen

    host, port = parse_listen(http)
    tokens = load_tokens(secret_from_env(settings.API_TOKEN), tokens_file)
    if not tokens.configured and not is_loopback(host):
        raise InvalidInputError(
            f"--http {http}: serving beyond this host needs a token: set "
            f"{settings.API_TOKEN_ENV} (openssl rand -hex 16) or {settings.API_TOKENS_FILE_ENV}, "
            "or listen on 127.0.0.1"
        )
    from orchestrator.api.auth import ApiSettings

    return _Listen(host, port, ApiSettings(tokens, read_open, metrics_need_token))


def _web_settings(api: ApiSettings, public_url: str | None, hosts: str) -> ApiSettings:
    """The Host names answered to, and Secure cookies behind an https public URL."""
    from orchestrator.api.hosts import allowed_hosts

    return replace(
        api,
        allowed_hosts=allowed_hosts(public_url, settings.split_list(hosts)),
        secure_cookies=bool(public_url and public_url.lower().startswith("https://")),
    )


def _start_http(
    app: AppContext, service: SchedulerService, listen: _Listen, per_job_histograms: bool
) -> HttpServer:
    from orchestrator.api.wiring import start_http

    max_age = _seconds(settings.DEFAULT_HEALTH_MAX_AGE, "health max age")
    return start_http(
        service,
        app.operations(),
        listen.host,
        listen.port,
        listen.api,
        per_job_histograms=per_job_histograms,
        health_max_age_seconds=max_age,
    )


@click.command()
@health_file_option
@click.option(
    "--max-age",
    default=settings.DEFAULT_HEALTH_MAX_AGE,
    help="A loop whose progress is older than this is stuck.",
)
@click.option(
    "--url",
    metavar="URL",
    help="Ask the service's /healthz over HTTP instead of reading the file "
    "(http://127.0.0.1:8080/healthz).",
)
def health(health_file: Path, max_age: str, url: str | None) -> None:
    """Exit 0 while every loop of the service (fires, claims, maintenance) made progress
    within --max-age, else 1 naming the stale loop (for a compose or Docker healthcheck).

    Example: orchestrator health --max-age 30s
    """
    if url is not None:
        _health_over_http(url)
        return
    limit = _seconds(max_age, "max age")
    try:
        data = json.loads(health_file.read_text())
        stamp = datetime.fromisoformat(data["time"])
    except (OSError, ValueError, KeyError) as error:
        click.echo(f"unhealthy: no health file at {health_file} ({error})", err=True)
        raise SystemExit(1) from None
    now = datetime.now(UTC)
    age = (now - stamp).total_seconds()
    if age > limit:  # the file itself is written by the fires loop
        click.echo(f"unhealthy: the fires loop last made progress {age:.0f}s ago", err=True)
        raise SystemExit(1)
    try:
        loops = {name: datetime.fromisoformat(at) for name, at in data["loops"].items()}
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        click.echo(f"unhealthy: the health file has no loop stamps ({error})", err=True)
        raise SystemExit(1) from None
    from orchestrator.service.health import describe, stale_loops

    stale = stale_loops(loops, now, limit)
    if stale:
        click.echo(f"unhealthy: {describe(stale)}", err=True)
        raise SystemExit(1)
    click.echo(
        f"healthy: {data.get('jobs', 0)} jobs, {data.get('active_runs', 0)} runs in "
        f"flight, loop ran {age:.1f}s ago"
    )

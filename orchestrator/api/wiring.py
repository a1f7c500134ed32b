"""The API put together for one running service: its metrics observe the service, its
health is the service's loops."""

from __future__ import annotations

from typing import Any

from orchestrator.api.app import create_app
from orchestrator.api.auth import ApiSettings
from orchestrator.api.metrics import ServiceMetrics
from orchestrator.api.server import HttpServer
from orchestrator.operations import Operations
from orchestrator.service.health import check
from orchestrator.service.scheduler import SchedulerService


def start_http(
    service: SchedulerService,
    operations: Operations,
    host: str,
    port: int,
    settings: ApiSettings,
    *,
    per_job_histograms: bool = False,
    health_max_age_seconds: float = 30.0,
) -> HttpServer:
    """Serve the API for `service` on host:port (0: any free port); started."""
    metrics = ServiceMetrics(
        operations.backends,
        service.runs_in_flight,
        per_job_histograms=per_job_histograms,
        launches=lambda: service.launches.stats().to_dict(),
    )
    service.observers.add(metrics)

    def health() -> tuple[bool, str, dict[str, Any]]:
        healthy, why, ages = check(service.beats, health_max_age_seconds)
        return healthy, why, dict(ages)

    app = create_app(operations, settings, metrics, health)
    server = HttpServer(app, host, port, streams=settings.max_streams)
    server.start()
    return server

"""/healthz and /readyz of a service on the fake engine: a wedged loop makes /healthz
503 naming it; an engine that goes away makes /readyz 503 naming the engine."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from orchestrator.api.auth import ApiSettings, Tokens
from orchestrator.api.server import HttpServer
from orchestrator.api.wiring import start_http
from orchestrator.hostpaths import ON_HOST
from orchestrator.operations import Backends, Operations
from orchestrator.store.facade import Store
from tests.component.conftest import Service, wedge


@pytest.fixture
def http(serve: Callable[..., Service]) -> Iterator[tuple[Service, str]]:
    running = serve()
    backends = Backends(
        open_store=lambda: Store(running.database),
        engine=lambda: running.engine,
        where=lambda: ON_HOST,
        launch_settings=lambda: running.service.launcher.settings,
        launcher=lambda: running.service.launcher,
        secrets_dir="/nonexistent",
    )
    server: HttpServer = start_http(
        running.service,
        Operations(backends, actor="test"),
        "127.0.0.1",
        0,
        ApiSettings(Tokens([])),
        health_max_age_seconds=2,
    )
    yield running, server.url
    server.stop()


def answer_within(url: str, status: int, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        response = requests.get(url, timeout=5)
        if response.status_code == status:
            return dict(response.json())
        if time.monotonic() > deadline:
            raise AssertionError(f"{url}: {response.status_code} {response.text}")
        time.sleep(0.2)


def test_healthz_names_a_wedged_loop_and_recovers(
    http: tuple[Service, str],
    released: threading.Event,
) -> None:
    running, url = http
    answer_within(url + "/healthz", 200, 10)
    running.service.store.due_pending = wedge(released)  # type: ignore[method-assign]
    body = answer_within(url + "/healthz", 503, 10)
    assert body["error"].startswith("unhealthy: the maintenance loop last made progress")
    assert "fires" not in body["error"] and "claims" not in body["error"]
    released.set()
    answer_within(url + "/healthz", 200, 10)


def test_readyz_names_the_engine_while_it_is_away(http: tuple[Service, str]) -> None:
    running, url = http
    assert answer_within(url + "/readyz", 200, 5) == {"status": "ready"}
    running.engine.go_away()
    try:
        body = answer_within(url + "/readyz", 503, 5)
        assert body["error"].startswith("engine:") and "database" not in body["error"]
        metrics = requests.get(url + "/metrics", timeout=5).text
        assert "orchestrator_engine_up 0.0" in metrics
    finally:
        running.engine.come_back()
    answer_within(url + "/readyz", 200, 5)


def test_writes_are_refused_when_no_token_is_configured(http: tuple[Service, str]) -> None:
    _, url = http
    response = requests.post(url + "/api/jobs/x/enable", timeout=5)
    assert response.status_code == 401
    assert "no API token is configured" in response.json()["error"]

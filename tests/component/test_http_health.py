"""/healthz and /readyz of a service on the fake engine: a wedged loop makes /healthz
503 naming it; an engine that goes away makes /readyz 503, naming the engine to a caller
with a token only; a flood of /readyz costs one probe."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from orchestrator.api import readiness
from orchestrator.api.auth import ApiSettings, Tokens, load_tokens
from orchestrator.api.server import HttpServer
from orchestrator.api.wiring import start_http
from orchestrator.hostpaths import ON_HOST
from orchestrator.operations import Backends, Operations
from orchestrator.store.facade import Store
from tests.component.conftest import Service, wedge

READ_TOKEN = "reader-" + "r4" * 16


@pytest.fixture
def http(serve: Callable[..., Service]) -> Iterator[tuple[Service, str]]:
    yield from _http(serve, ApiSettings(Tokens([])))


@pytest.fixture
def http_with_reader(
    serve: Callable[..., Service], tmp_path: Path
) -> Iterator[tuple[Service, str]]:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"reader:{READ_TOKEN}:read\n")
    yield from _http(serve, ApiSettings(load_tokens(None, str(tokens))))


def _http(serve: Callable[..., Service], settings: ApiSettings) -> Iterator[tuple[Service, str]]:
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
        settings,
        health_max_age_seconds=2,
    )
    yield running, server.url
    server.stop()


def answer_within(
    url: str, status: int, seconds: float, token: str | None = None
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    while True:
        response = requests.get(url, timeout=5, headers=headers)
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
    # Queued runs are read when a change is told; adoption is still polled (5 s).
    running.service.store.adoption_candidates = wedge(released)  # type: ignore[method-assign]
    body = answer_within(url + "/healthz", 503, 15)
    assert body["error"].startswith("unhealthy: the maintenance loop last made progress")
    assert "fires" not in body["error"] and "claims" not in body["error"]
    released.set()
    answer_within(url + "/healthz", 200, 10)


def test_readyz_names_the_engine_while_it_is_away_to_a_token_only(
    http_with_reader: tuple[Service, str],
) -> None:
    running, url = http_with_reader
    assert answer_within(url + "/readyz", 200, 5) == {"status": "ready"}
    running.engine.go_away()
    try:
        body = answer_within(url + "/readyz", 503, 5, token=READ_TOKEN)
        assert body["error"].startswith("engine:") and "database" not in body["error"]
        # Anonymous: ready or not, nothing of where the engine or the database are.
        assert answer_within(url + "/readyz", 503, 5) == {"error": "not ready"}
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


def test_a_flood_of_readyz_costs_one_probe_and_holds_no_worker(
    http: tuple[Service, str],
) -> None:
    running, url = http
    answer_within(url + "/readyz", 200, 5)
    time.sleep(2.5)  # the cached answer has aged out
    probes = []
    facts = running.engine.facts

    def slow_facts() -> Any:
        probes.append(time.monotonic())
        time.sleep(1.5)
        return facts()

    running.engine.facts = slow_facts  # type: ignore[method-assign]
    statuses: list[int] = []

    def ask() -> None:
        statuses.append(requests.get(url + "/readyz", timeout=30).status_code)

    callers = [threading.Thread(target=ask) for _ in range(60)]
    for caller in callers:
        caller.start()
    # While the probe is under way, the other routes are served (no worker held).
    assert requests.get(url + "/healthz", timeout=1.4).status_code == 200
    for caller in callers:
        caller.join(30)
    assert statuses == [200] * 60
    assert len(probes) == 1, f"{len(probes)} probes for 60 callers"


def test_a_probe_that_hangs_is_not_ready_not_a_hung_readyz(
    http_with_reader: tuple[Service, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    running, url = http_with_reader
    monkeypatch.setattr(readiness, "WAIT_SECONDS", 0.5)
    time.sleep(2.5)  # the cached answer has aged out
    released = threading.Event()
    facts = running.engine.facts

    def hung_facts() -> Any:
        released.wait(30)
        return facts()

    running.engine.facts = hung_facts  # type: ignore[method-assign]
    try:
        started = time.monotonic()
        response = requests.get(
            url + "/readyz", headers={"Authorization": f"Bearer {READ_TOKEN}"}, timeout=5
        )
        assert response.status_code == 503
        assert "the probe has not answered within" in response.json()["error"]
        assert time.monotonic() - started < 4
    finally:
        released.set()

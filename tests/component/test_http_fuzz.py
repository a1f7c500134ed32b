"""The API's and the dashboard's query and path values, fuzzed over the HTTP server in
this process (SQLite, the fake engine): whatever a client sends, the answer is never a
500, and an error is one line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.api.app import create_app
from orchestrator.api.auth import ApiSettings, load_tokens
from orchestrator.api.metrics import ServiceMetrics
from orchestrator.api.server import HttpServer
from orchestrator.engine.fake import FakeEngine
from orchestrator.hostpaths import ON_HOST
from orchestrator.operations import Backends, Operations
from orchestrator.store import migrations
from orchestrator.store.database import Database
from orchestrator.store.facade import Store

TOKEN = "fuzzer-" + "f5" * 16


def _unavailable() -> object:
    raise AssertionError("no run is started by these requests")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[requests.Session, str]]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    database = Database(f"sqlite:///{folder / 'fuzz.db'}")
    migrations.upgrade(database)
    backends = Backends(
        open_store=lambda: Store(database),
        engine=FakeEngine,
        where=lambda: ON_HOST,
        launch_settings=_unavailable,  # type: ignore[arg-type]
        launcher=_unavailable,  # type: ignore[arg-type]
        secrets_dir="/nonexistent",
    )
    tokens = folder / "tokens"
    tokens.write_text(f"fuzzer:{TOKEN}:read\n")
    app = create_app(
        Operations(backends, actor="test"),
        ApiSettings(load_tokens(None, str(tokens))),
        ServiceMetrics(backends, lambda: 0),
        lambda: (True, "", {}),
    )
    server = HttpServer(app, "127.0.0.1", 0)
    server.start()
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        session.cookies.set("orchestrator_token", TOKEN)
        yield session, server.url
    server.stop()
    database.dispose()


# Text as hostile as a client's: any code point (lone surrogates become replacement
# bytes), digits of any script, long runs of digits, dates and offsets at the edges.
_digits = st.text(alphabet="0123456789", min_size=1, max_size=60)
_dates = st.builds(
    "{:04d}-{:02d}-{:02d}T00:00:00{}".format,
    st.integers(0, 99999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.sampled_from(["", "Z", "+14:00", "-14:00", "+23:59"]),
)
_values = st.one_of(
    st.text(max_size=40),
    _digits,
    _digits.map(lambda digits: digits + "d"),
    st.just("9" * 5000),
    _dates,
    st.sampled_from(["²", "٣d", "-1", "0", "1e9", "+5", " 5", "5 ", "0x10", "\x00", "é"]),
)
_PATHS = [
    "/api/runs?since={}",
    "/api/runs?before={}",
    "/api/runs?limit={}",
    "/api/runs?job={}",
    "/api/runs?status={}",
    "/api/audit?before={}",
    "/api/runs/{}",
    "/api/jobs/{}",
    "/runs?since={}",
    "/runs?before={}",
    "/runs?job={}",
    "/runs?status={}",
    "/runs/{}",
    "/jobs?q={}&status={}",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(template=st.sampled_from(_PATHS), value=_values)
def test_no_query_or_path_value_is_a_500(
    client: tuple[requests.Session, str], template: str, value: str
) -> None:
    session, url = client
    encoded = quote(value.encode("utf-8", "surrogatepass"), safe="")
    response = session.get(url + template.format(encoded, encoded), timeout=10)
    assert response.status_code < 500, (template, value, response.text[:300])
    if response.status_code >= 400 and template.startswith("/api/"):
        error = response.json()["error"]
        assert "\n" not in error and "Traceback" not in error

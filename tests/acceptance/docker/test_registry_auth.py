"""Registry logins for pulls come from a Docker config.json in the secrets directory,
reach the registry through the engine, and are never stored or printed."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.docker
PASSWORD = "reg-Secret-9f3a1c"


class FakeRegistry(BaseHTTPRequestHandler):
    """Asks for Basic auth at /v2/ and records what comes; knows no manifest."""

    seen: list[str | None]

    def do_GET(self) -> None:
        authorization = self.headers.get("Authorization")
        self.seen.append(authorization)
        if self.path.rstrip("/") == "/v2" and authorization is None:
            self._answer(401, {"errors": [{"code": "UNAUTHORIZED"}]}, realm=True)
        elif self.path.rstrip("/") == "/v2":
            self._answer(200, {})
        else:
            self._answer(404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]})

    do_HEAD = do_GET

    def _answer(self, status: int, body: object, realm: bool = False) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        if realm:
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def registry() -> Iterator[tuple[str, list[str | None]]]:
    seen: list[str | None] = []
    handler = type("Handler", (FakeRegistry,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_pulls_log_in_with_the_config_from_the_secrets_directory(
    registry: tuple[str, list[str | None]],
    docker_cli: Any,
    write_jobs: Any,
    tmp_path: Path,
    database_url: str,
) -> None:
    address, seen = registry
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    login = base64.b64encode(f"robot:{PASSWORD}".encode()).decode()
    (secrets_dir / "registry.json").write_text(json.dumps({"auths": {address: {"auth": login}}}))
    jobs = write_jobs(
        "private.yaml",
        f'name: private\nschedule: "@daily"\nimage: {address}/team/app:1\npull: always\n',
    )
    docker_cli.env["ORCHESTRATOR_SECRETS_DIR"] = str(secrets_dir)
    docker_cli.env["ORCHESTRATOR_REGISTRY_AUTH"] = "registry.json"
    docker_cli("jobs", "apply", str(jobs))
    ran = docker_cli("jobs", "run", "private", expect=125)
    assert f"Basic {login}" in seen  # the engine logged in with our credentials
    assert f"image '{address}/team/app:1' cannot be pulled" in ran.stderr
    assert PASSWORD not in ran.stdout + ran.stderr
    shown = docker_cli("runs", "list", "--json").stdout + docker_cli("runs", "show", "1").stdout
    assert PASSWORD not in shown and login not in shown

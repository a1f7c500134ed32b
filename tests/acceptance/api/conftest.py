"""`orchestrator serve --http` as a real process, its API asked over real HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.engines import JOB_IMAGE, TEST_LABEL

WRITE_TOKEN = "alice-" + "a1" * 16
READ_TOKEN = "bob-" + "b2" * 16
WRITE_TOKEN_2 = "carol-" + "c3" * 16


@dataclass
class ApiService:
    url: str
    database_url: str
    process: subprocess.Popen[bytes]
    log: Path
    label: str

    def request(
        self, method: str, path: str, *, token: str | None = WRITE_TOKEN, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("timeout", 30)
        return requests.request(method, self.url + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def metrics_with(self, line: str, timeout: float = 10, token: str | None = None) -> str:
        """The metrics once they hold `line` (a run's end is counted just after it is
        recorded)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.get("/metrics", token=token).text
            if line in text:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"no {line!r} in the metrics:\n{text}")
            time.sleep(0.1)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def apply(self, text: str, **params: Any) -> requests.Response:
        return self.post(
            "/api/jobs/apply", data=text.replace("IMAGE", JOB_IMAGE).encode(), params=params
        )

    def wait_run(self, run_id: int, statuses: tuple[str, ...], timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.get(f"/api/runs/{run_id}").json()
            if run["status"] in statuses:
                return run
            time.sleep(0.1)
        raise AssertionError(f"run {run_id} not {statuses} within {timeout}s: {run}")


def start_api_service(
    folder: Path, database_url: str, label: str, *args: str, env: dict[str, str] | None = None
) -> ApiService:
    tokens = folder / "tokens"
    tokens.write_text(
        f"# who:token[:read]\nalice:{WRITE_TOKEN}\nbob:{READ_TOKEN}:read\ncarol:{WRITE_TOKEN_2}\n"
    )
    log = folder / f"serve-{uuid.uuid4().hex[:6]}.log"
    environment = {
        **os.environ,
        "ORCHESTRATOR_DATABASE_URL": database_url,
        "ORCHESTRATOR_CONTAINER_LABELS": f"{TEST_LABEL}={label}",
        "ORCHESTRATOR_HEALTH_FILE": str(folder / "health.json"),
        "ORCHESTRATOR_API_TOKENS_FILE": str(tokens),
        "ORCHESTRATOR_LOG_LEVEL": "info",
        **(env or {}),
    }
    environment.pop("ORCHESTRATOR_API_TOKEN", None)
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "serve", "--http", "127.0.0.1:0", *args],
            env=environment,
            cwd=folder,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    url = None
    while url is None:
        found = re.search(r"HTTP API listening on (http://\S+)", log.read_text(errors="replace"))
        if found:
            url = found[1]
        elif process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"serve did not listen:\n{log.read_text(errors='replace')}")
        else:
            time.sleep(0.1)
    service = ApiService(url, database_url, process, log, label)
    try:
        while service.get("/healthz", token=None).status_code != 200:
            if time.monotonic() > deadline:
                raise AssertionError(f"serve not healthy:\n{service.output()}")
            time.sleep(0.1)
    except BaseException:
        process.kill()
        process.wait(10)
        raise
    return service


def stop_api_service(service: ApiService, docker_client: Any) -> None:
    if service.process.poll() is None:
        service.process.send_signal(signal.SIGTERM)
        try:
            service.process.wait(15)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait(10)
    selector = {"label": f"{TEST_LABEL}={service.label}"}
    for container in docker_client.containers.list(all=True, filters=selector):
        container.remove(force=True)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[ApiService]:
    """One service for the module, on SQLite; tests give their jobs their own names."""
    folder = tmp_path_factory.mktemp("api")
    service = start_api_service(folder, f"sqlite:///{folder / 'orchestrator.db'}", uuid.uuid4().hex)
    yield service
    stop_api_service(service, docker_client)


def sse_events(response: requests.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a Server-Sent Events stream, as they come."""
    name, data = "message", []
    for raw in response.iter_lines(decode_unicode=True):
        if raw == "":
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif raw.startswith("event:"):
            name = raw.removeprefix("event:").strip()
        elif raw.startswith("data:"):
            data.append(raw.removeprefix("data:").lstrip())


def signin_form(url: str) -> tuple[str, dict[str, str]]:
    """The sign-in form's token and the pre-session cookie it is bound to, as a browser
    gets them from the page (the cookie is passed on by hand: it may be Secure, which
    requests keeps from plain http)."""
    page = requests.get(url + "/signin", timeout=30)
    form = page.text.split('action="/signin"', 1)[1]
    csrf = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    return csrf, {"orchestrator_signin": page.cookies["orchestrator_signin"]}


def sign_in(
    url: str, token: str, next: str = "/jobs", **kwargs: Any
) -> tuple[requests.Session, requests.Response]:
    """A session signed in (or not) through the form, and the form's answer."""
    session = requests.Session()
    csrf, cookies = signin_form(url)
    data = {"token": token, "next": next, "csrf": csrf}
    answer = session.post(
        url + "/signin", data=data, cookies=cookies, allow_redirects=False, timeout=30, **kwargs
    )
    return session, answer

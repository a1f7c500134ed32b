"""Live log streams against a real service over real HTTP and the real engine: many
viewers of running runs do not hold the server, a viewer that leaves frees its place,
each token has a cap, and a viewer that joins late holds a bounded window."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.acceptance.api.conftest import (
    READ_TOKEN,
    WRITE_TOKEN,
    WRITE_TOKEN_2,
    ApiService,
    sign_in,
    sse_events,
    start_api_service,
    stop_api_service,
)

TOKENS = (WRITE_TOKEN, READ_TOKEN, WRITE_TOKEN_2)
PER_TOKEN = 20  # ORCHESTRATOR_HTTP_STREAMS_PER_CLIENT's default


def running_run(api: ApiService, command: str) -> int:
    """A run of a new job that prints, then runs `command`, once it is running."""
    name = f"streams-{uuid.uuid4().hex[:8]}"
    text = (
        f"name: {name}\nschedule: '0 0 1 1 *'\nimage: IMAGE\n"
        f"command: {json.dumps(['sh', '-c', command])}\n"
    )
    assert api.apply(text).status_code == 200
    queued = api.post(f"/api/jobs/{name}/run")
    assert queued.status_code == 202, queued.text
    return int(api.wait_run(queued.json()["id"], ("running",))["id"])


class Viewer:
    """A raw SSE client: one socket, the request sent, read only when asked."""

    def __init__(self, api: ApiService, run_id: int, token: str | None) -> None:
        where = urlsplit(api.url)
        self.sock = socket.create_connection((where.hostname, where.port), timeout=30)
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self.sock.sendall(
            f"GET /api/runs/{run_id}/logs HTTP/1.1\r\nHost: {where.netloc}\r\n{auth}"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        self.received = b""

    def wait_for(self, marker: bytes, timeout: float = 30) -> bytes:
        deadline = time.monotonic() + timeout
        while marker not in self.received:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {marker!r} within {timeout}s: {self.received[:300]!r}")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"closed before {marker!r}: {self.received[:300]!r}")
            self.received += chunk
        return self.received

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def viewers() -> Iterator[list[Viewer]]:
    opened: list[Viewer] = []
    yield opened
    for viewer in opened:
        viewer.close()


@pytest.fixture(scope="module")
def opened(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[ApiService]:
    """A service whose reads are open, 3 streams a client, 4 in all."""
    folder: Path = tmp_path_factory.mktemp("streams-open")
    service = start_api_service(
        folder,
        f"sqlite:///{folder / 'orchestrator.db'}",
        uuid.uuid4().hex,
        env={
            "ORCHESTRATOR_HTTP_READ_OPEN": "true",
            "ORCHESTRATOR_HTTP_STREAMS_PER_CLIENT": "3",
            "ORCHESTRATOR_HTTP_MAX_STREAMS": "4",
        },
    )
    yield service
    stop_api_service(service, docker_client)


def test_sixty_viewers_of_running_runs_leave_health_and_reads_answering(
    api: ApiService, viewers: list[Viewer]
) -> None:
    # More viewers than the server's 40 worker threads, on runs that print once and then
    # stay quiet: a viewer that held a thread would hold it until the run ended.
    runs = [running_run(api, "echo started; sleep 300") for _ in range(2)]
    for index in range(3 * PER_TOKEN):
        viewers.append(Viewer(api, runs[index % 2], TOKENS[index % 3]))
    for viewer in viewers:
        assert b"HTTP/1.1 200" in viewer.wait_for(b"event: output")
        assert b'"text": "started\\n"' in viewer.wait_for(b"started")
    health = api.get("/healthz", token=None, timeout=10)
    assert health.status_code == 200, health.text
    jobs = api.get("/api/jobs", timeout=10)
    assert jobs.status_code == 200 and len(jobs.json()) >= 2
    assert api.get(f"/api/runs/{runs[0]}", timeout=10).json()["status"] == "running"


def test_past_its_cap_a_token_is_refused_and_a_viewer_that_leaves_frees_its_place(
    api: ApiService, viewers: list[Viewer]
) -> None:
    run_id = running_run(api, "echo started; sleep 300")
    for _ in range(PER_TOKEN):
        viewers.append(Viewer(api, run_id, READ_TOKEN))
    for viewer in viewers:
        viewer.wait_for(b"started")
    with api.get(f"/api/runs/{run_id}/logs", token=READ_TOKEN, stream=True) as refused:
        assert refused.status_code == 429
        assert refused.headers["Retry-After"].isdigit()
        assert refused.json() == {
            "error": f"token 'bob' has {PER_TOKEN} log streams open, the most allowed "
            "(ORCHESTRATOR_HTTP_STREAMS_PER_CLIENT): close one or retry later"
        }
    # Nor may bob's dashboard tab (signed in: the cookie) open another.
    browser, signin = sign_in(api.url, READ_TOKEN)
    assert signin.status_code == 303, signin.text
    with browser.get(f"{api.url}/api/runs/{run_id}/logs", stream=True, timeout=10) as tab:
        assert tab.status_code == 429
    # Another token is not held back by bob's streams.
    other = Viewer(api, run_id, WRITE_TOKEN)
    viewers.append(other)
    other.wait_for(b"started")
    # One of bob's viewers goes away without a word: its place is his again, soon.
    viewers.pop(0).close()
    deadline = time.monotonic() + 10
    while True:
        again = api.get(f"/api/runs/{run_id}/logs", token=READ_TOKEN, stream=True, timeout=10)
        if again.status_code == 200:
            break
        again.close()
        assert again.status_code == 429, again.text
        assert time.monotonic() < deadline, "the place of the viewer that left was not freed"
        time.sleep(0.2)
    with again:
        event, data = next(sse_events(again))
    assert (event, data) == ("output", {"text": "started\n"})


def test_a_viewer_that_joins_a_long_output_late_is_given_a_bounded_window(
    api: ApiService, viewers: list[Viewer]
) -> None:
    # 3 MB of output (lines of 1,000 bytes) before the second viewer comes: it is told
    # what it missed, not sent it all (nor is it all kept for it).
    total = 3_000_000
    line = "x" * 999
    run_id = running_run(api, f"yes {line} | head -c {total}; echo done-printing; sleep 300")
    first = Viewer(api, run_id, WRITE_TOKEN)
    viewers.append(first)
    first.wait_for(b"done-printing", timeout=60)  # the feed has it all by now
    skipped = 0
    text = ""
    with api.get(f"/api/runs/{run_id}/logs", token=READ_TOKEN, stream=True) as response:
        for event, data in sse_events(response):
            if event == "skipped":
                skipped += data["bytes"]
            elif event == "output":
                text += data["text"]
                if text.endswith("done-printing\n"):
                    break
    assert skipped > 0
    assert len(text) <= 2 * 256 * 1024
    assert skipped + len(text.encode()) == total + len("done-printing\n")
    assert text.endswith(f"{line}\n{line}\ndone-printing\n")


def test_anonymous_viewers_share_an_address_cap_and_all_share_the_service_cap(
    opened: ApiService, viewers: list[Viewer]
) -> None:
    run_id = running_run(opened, "echo started; sleep 300")
    for _ in range(3):
        viewers.append(Viewer(opened, run_id, None))
    for viewer in viewers:
        viewer.wait_for(b"started")
    with opened.get(f"/api/runs/{run_id}/logs", token=None, stream=True) as refused:
        assert refused.status_code == 429
        assert refused.json() == {
            "error": "address 127.0.0.1 has 3 log streams open, the most allowed "
            "(ORCHESTRATOR_HTTP_STREAMS_PER_CLIENT): close one or retry later"
        }
    signed = Viewer(opened, run_id, READ_TOKEN)
    viewers.append(signed)
    signed.wait_for(b"started")
    # Four open in all: the service's own cap, whoever asks.
    with opened.get(f"/api/runs/{run_id}/logs", token=WRITE_TOKEN, stream=True) as full:
        assert full.status_code == 503
        assert full.json() == {
            "error": "the service has 4 log streams open, the most allowed "
            "(ORCHESTRATOR_HTTP_MAX_STREAMS): retry later"
        }
    assert opened.get("/healthz", token=None, timeout=10).status_code == 200

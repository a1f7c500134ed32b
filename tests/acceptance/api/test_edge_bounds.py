"""Hostile clients against the real service over real sockets: endless bodies, headers
sent a byte at a time, values no one checked. Each must be refused in a line, and the
service must keep answering everyone else."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from orchestrator.api.limits import (
    APPLY_BODY_BYTES,
    BODY_SECONDS,
    DEFAULT_BODY_BYTES,
    DRAIN_BYTES,
    HEADER_SECONDS,
    MAX_HEADER_BYTES,
)
from tests.acceptance.api.conftest import (
    WRITE_TOKEN,
    ApiService,
    signin_form,
    start_api_service,
    stop_api_service,
)

# What an endless body offers before the test gives up on the server cutting it.
OFFERED = 64 * 1024 * 1024
# Socket buffers on both sides hold a few MiB that are sent but never read; the server
# drains DRAIN_BYTES more after its answer.
BUFFERS = 12 * 1024 * 1024 + DRAIN_BYTES


def connect(api: ApiService) -> socket.socket:
    host, port = api.url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=30)


def head(path: str, *lines: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {WRITE_TOKEN}\r\n"
        f"Cookie: orchestrator_token={WRITE_TOKEN}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        + "".join(f"{line}\r\n" for line in lines)
        + "\r\n"
    ).encode()


def answer(sock: socket.socket, until: bytes | None = None) -> bytes:
    """Everything the server sends until it closes the connection (or, given `until`,
    until its answer ends with it)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
            if until is not None and received.endswith(until):
                break
    except ConnectionResetError:  # it closed with our bytes unread: what came before counts
        pass
    return received


@pytest.fixture
def no_traceback(api: ApiService) -> Iterator[None]:
    """The service logs no traceback while the test runs."""
    start = len(api.output())
    yield
    assert "Traceback" not in api.output()[start:]


def still_answers(api: ApiService) -> None:
    response = requests.get(api.url + "/healthz", timeout=5)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("path", "cap"),
    [
        ("/signin", DEFAULT_BODY_BYTES),
        ("/jobs/some-job/enable", DEFAULT_BODY_BYTES),
        ("/api/jobs/apply", APPLY_BODY_BYTES),
    ],
)
def test_an_endless_chunked_body_is_cut_at_the_cap_with_413(
    api: ApiService, path: str, cap: int
) -> None:
    sock = connect(api)
    sock.sendall(head(path, "Transfer-Encoding: chunked"))
    sent = 0
    chunk = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"

    def flood() -> None:
        nonlocal sent
        try:
            while sent < OFFERED:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:  # the server closed the connection: the point
            pass

    sender = threading.Thread(target=flood, daemon=True)
    sender.start()
    try:
        received = answer(sock)
    finally:
        sender.join(30)
        sock.close()
    assert received.startswith(b"HTTP/1.1 413 "), received[:200]
    assert f"larger than {cap} bytes".encode() in received
    assert sent < cap + BUFFERS, f"{sent} bytes were read before the cut"
    still_answers(api)


def test_a_declared_length_over_the_cap_is_413_before_any_body_is_sent(api: ApiService) -> None:
    sock = connect(api)
    try:
        sock.settimeout(10)
        sock.sendall(head("/signin", f"Content-Length: {10**12}"))
        received = answer(sock, until=b"}")
    finally:
        sock.close()
    assert received.startswith(b"HTTP/1.1 413 "), received[:200]


def test_a_body_sent_a_byte_at_a_time_is_408_while_others_are_served(
    api: ApiService,
) -> None:
    sock = connect(api)
    started = time.monotonic()
    stop = threading.Event()

    def trickle() -> None:
        try:
            sock.sendall(head("/signin", "Content-Length: 1000"))
            while not stop.wait(0.5):
                sock.sendall(b"a")
        except OSError:
            pass

    slow = threading.Thread(target=trickle, daemon=True)
    slow.start()
    try:
        sock.settimeout(BODY_SECONDS * 2.5)
        still_answers(api)
        received = answer(sock, until=b"}")
    finally:
        stop.set()
        sock.close()
    assert received.startswith(b"HTTP/1.1 408 "), received[:200]
    assert time.monotonic() - started < BODY_SECONDS + 5


def test_headers_over_the_bound_are_431_even_in_one_read(api: ApiService) -> None:
    sock = connect(api)
    try:
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 60000 + b"\r\n\r\n"
        )
        received = answer(sock, until=b"}")
    finally:
        sock.close()
    assert received.startswith(b"HTTP/1.1 431 "), received[:200]
    assert f"larger than {MAX_HEADER_BYTES} bytes".encode() in received
    still_answers(api)


def test_headers_sent_a_byte_at_a_time_are_cut_off_while_others_are_served(
    api: ApiService,
) -> None:
    sock = connect(api)
    closed_after: list[float] = []
    started = time.monotonic()

    def trickle() -> None:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            for _ in range(int(HEADER_SECONDS * 4)):
                sock.sendall(b"X")
                time.sleep(0.5)
                sock.setblocking(False)
                try:
                    if sock.recv(1) == b"":
                        break
                except BlockingIOError:
                    pass
                finally:
                    sock.setblocking(True)
        except OSError:
            pass
        closed_after.append(time.monotonic() - started)

    slow = threading.Thread(target=trickle, daemon=True)
    slow.start()
    while slow.is_alive() and time.monotonic() - started < HEADER_SECONDS * 2.5:
        still_answers(api)
        time.sleep(0.5)
    slow.join(HEADER_SECONDS * 2.5)
    sock.close()
    assert closed_after, "the slow sender was still connected"
    assert closed_after[0] < HEADER_SECONDS + 5, f"cut off only after {closed_after[0]:.1f}s"


BIG = "9" * 5000
HOSTILE_QUERIES = [
    (f"/api/runs?since={BIG}d", 400, "longer than 100 years"),
    (f"/api/runs?since={BIG}", 400, "is neither a time"),
    ("/api/runs?since=0001-01-01T00:00:00%2B14:00", 400, "out of the range of times"),
    ("/api/runs?since=9999-12-31T23:59:59-14:00", 400, "out of the range of times"),
    ("/api/runs?since=99999-01-01", 400, "is neither a time"),
    ("/api/runs?since=0000-00-00", 400, "is neither a time"),
    ("/api/runs?since=%D9%A3d", 400, "is not a duration"),
]


@pytest.mark.parametrize(("path", "status", "says"), HOSTILE_QUERIES)
def test_hostile_query_values_are_one_line_json_errors(
    api: ApiService, no_traceback: None, path: str, status: int, says: str
) -> None:
    response = api.get(path)
    assert response.status_code == status, response.text
    assert list(response.json()) == ["error"] and says in response.json()["error"]
    assert "\n" not in response.json()["error"]


@pytest.mark.parametrize(
    "path",
    [f"/runs?before={BIG}", "/runs?before=%C2%B2", "/runs?since=0001-01-01T00:00:00%2B14:00"],
)
def test_hostile_values_on_the_dashboard_are_a_400_page(
    api: ApiService, no_traceback: None, path: str
) -> None:
    response = api.get(path, token=None, cookies={"orchestrator_token": WRITE_TOKEN})
    assert response.status_code == 400, response.text[:300]
    assert "<html" in response.text


JOB = "name: hostile\nschedule: '0 0 1 1 *'\nimage: IMAGE\ncommand: [echo]\n"


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (f"timeout: {BIG}\n", "a number of more than 1000 digits"),
        (f"timeout: 0x{'f' * 5000}\n", "a number of more than 1000 digits"),
        (f"timeout: {BIG}s\n", "longer than 100 years"),
        (f"resources: {{memory: '{BIG}m'}}\n", "more digits than a size needs"),
        (f"resources: {{memory: '1.{BIG}m'}}\n", "more digits than a size needs"),
        (f"ports: ['{BIG}']\n", "is not a port"),
        (f"retries: {{count: {BIG}}}\n", "a number of more than 1000 digits"),
    ],
)
def test_hostile_numbers_in_a_job_file_are_422_naming_the_field(
    api: ApiService, no_traceback: None, extra: str, says: str
) -> None:
    response = api.apply(JOB + extra, dry_run="true")
    assert response.status_code == 422, response.text
    assert says in response.json()["error"] and "\n" not in response.json()["error"]


def test_non_ascii_tokens_cookies_and_form_fields_are_refused_not_500(
    api: ApiService, no_traceback: None
) -> None:
    for header in ("Bearer " + "é" * 20, "Bearer \u00ff\u00fe"):
        response = requests.get(
            api.url + "/api/jobs", headers={"Authorization": header.encode("latin-1")}, timeout=10
        )
        assert response.status_code == 401, response.text
    cookie = requests.get(
        api.url + "/api/jobs",
        headers={"Cookie": "orchestrator_token=\xe9\xe9".encode("latin-1")},
        timeout=10,
    )
    assert cookie.status_code == 401
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for body in (b"token=%C3%A9%FF", "token=\xe9".encode("latin-1"), b"token=\xff\xfe"):
        # Through the form as a browser posts it (its CSRF token and pre-session cookie),
        # so that the odd token itself is what the service judges.
        token, cookies = signin_form(api.url)
        signin = requests.post(
            api.url + "/signin",
            data=body + b"&csrf=" + token.encode(),
            headers=form,
            cookies=cookies,
            allow_redirects=False,
            timeout=10,
        )
        assert signin.status_code == 401, signin.text[:300]
    # And an odd CSRF token of the sign-in form itself: refused, not a 500.
    _, cookies = signin_form(api.url)
    odd = requests.post(
        api.url + "/signin",
        data=b"token=x&csrf=%C3%A9",
        headers=form,
        cookies=cookies,
        allow_redirects=False,
        timeout=10,
    )
    assert odd.status_code == 403, odd.text[:300]
    csrf = requests.post(
        api.url + "/jobs/x/enable",
        data="csrf=%C3%A9",
        headers={**form, "Cookie": f"orchestrator_token={WRITE_TOKEN}"},
        allow_redirects=False,
        timeout=10,
    )
    assert csrf.status_code == 403, csrf.text[:300]


@pytest.fixture(scope="module")
def on_postgres(
    tmp_path_factory: pytest.TempPathFactory, postgres_database_url: str, docker_client: Any
) -> Iterator[ApiService]:
    folder = tmp_path_factory.mktemp("api-postgres")
    service = start_api_service(folder, postgres_database_url, uuid.uuid4().hex)
    yield service
    stop_api_service(service, docker_client)


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("path", "status"),
    [("/api/jobs/a%00b", 400), ("/api/runs?job=a%00b", 400), ("/runs?job=a%00b", 400)],
)
def test_a_nul_in_a_name_is_bad_input_on_postgres_and_names_no_host(
    on_postgres: ApiService, path: str, status: int
) -> None:
    response = on_postgres.get(path, cookies={"orchestrator_token": WRITE_TOKEN})
    assert response.status_code == status, response.text[:300]
    assert "127.0.0.1" not in response.text and "postgresql" not in response.text
    assert "Traceback" not in on_postgres.output()

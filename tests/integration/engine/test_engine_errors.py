"""The engine adapter translates every failure of the SDK into our errors, also when the
engine goes away in the middle of a stop, kill or remove (an engine restart)."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any, ClassVar

import docker
import pytest
import requests

from orchestrator.engine import DockerEngine
from orchestrator.engine.errors import ContainerGoneError, EngineError, EngineUnavailableError


class GoneApi:
    """An API client whose engine has just gone away."""

    api_version = "1.41"

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> None:
            raise requests.exceptions.ConnectionError("Connection aborted.")

        return call


@pytest.mark.parametrize("verb", ["stop", "kill", "remove"])
def test_an_engine_gone_mid_call_is_engine_unavailable(verb: str) -> None:
    engine = DockerEngine(SimpleNamespace(api=GoneApi()))
    with pytest.raises(EngineUnavailableError, match="the engine did not answer"):
        getattr(engine, verb)("abc123")


def test_the_private_docker_calls_the_log_reader_relies_on_exist() -> None:
    """The adapter reads logs in large blocks through these (see DockerEngine.logs); the
    docker dependency is pinned to the versions where they exist and behave so."""
    import inspect

    from docker import APIClient

    for name in ("_url", "_get", "_raise_for_status"):
        assert callable(getattr(APIClient, name, None)), name
    assert list(inspect.signature(APIClient._url).parameters)[:2] == ["self", "pathfmt"]
    assert "stream" in inspect.signature(APIClient._get).parameters or "kwargs" in str(
        inspect.signature(APIClient._get)
    )


class Refusing(BaseHTTPRequestHandler):
    """An engine that answers every request with the status and message it is given."""

    answer: tuple[int, str] = (500, "")
    client_address = ("local", 0)  # over a unix socket the server gives none

    def do_GET(self) -> None:
        status, message = self.answer
        body = json.dumps({"message": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_engine() -> Iterator[tuple[DockerEngine, type[Refusing]]]:
    """Our adapter over the real SDK, talking to an engine that refuses as told."""
    handler = type("Handler", (Refusing,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{server.server_port}", version="1.41")
    try:
        yield DockerEngine(client), handler
    finally:
        client.close()
        server.shutdown()
        server.server_close()


# Docker's words (daemon/logs.go) for a container being removed, or dead.
BEING_REMOVED = "can not get logs from container which is dead or marked for removal"


@pytest.mark.parametrize("follow", [False, True])
def test_the_output_of_a_container_being_removed_is_gone(
    refusing_engine: tuple[DockerEngine, type[Refusing]], follow: bool
) -> None:
    engine, handler = refusing_engine
    handler.answer = (409, BEING_REMOVED)
    with pytest.raises(ContainerGoneError, match="marked for removal"):
        list(engine.logs("abc123", follow=follow))
    # Another conflict is the engine's error, not a gone container.
    handler.answer = (409, "container abc123 is paused")
    with pytest.raises(EngineError) as refused:
        list(engine.logs("abc123", follow=follow))
    assert not isinstance(refused.value, ContainerGoneError)


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.mark.parametrize("local", [True, False])
def test_calls_over_the_local_socket_do_not_read_the_environment_each_time(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, local: bool
) -> None:
    """requests looks up .netrc and proxy variables for every call unless told not to:
    a quarter of a call's CPU, for nothing on a unix socket (kept for a TCP engine)."""
    import requests.sessions

    looked: list[str] = []
    netrc = requests.sessions.get_netrc_auth
    monkeypatch.setattr(
        requests.sessions, "get_netrc_auth", lambda url, *a: looked.append(url) or netrc(url, *a)
    )
    handler = type("Handler", (Refusing,), {"answer": (200, "ok")})
    if local:
        server: socketserver.BaseServer = UnixHTTPServer(str(tmp_path / "engine.sock"), handler)
        url = f"unix://{tmp_path / 'engine.sock'}"
    else:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        url = f"tcp://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = docker.DockerClient(base_url=url, version="1.41")
    try:
        engine = DockerEngine(client)
        for _ in range(3):
            engine.api.version()
        assert (looked == []) is local
    finally:
        client.close()
        server.shutdown()
        server.server_close()


class Counting(Refusing):
    """An engine that keeps connections open (HTTP/1.1) and counts them."""

    protocol_version = "HTTP/1.1"
    answer = (200, "ok")
    connections: ClassVar[list[int]] = []

    closing: ClassVar[list[str]] = []

    def setup(self) -> None:
        super().setup()
        self.connections.append(1)

    def do_GET(self) -> None:
        # As Go's server: a request that asks for it gets `Connection: close` back.
        asked = self.headers.get("Connection", "")
        self.closing.append(asked)
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if asked.lower() == "close":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def test_calls_on_many_containers_share_one_pool_over_the_local_socket(
    tmp_path: Any,
) -> None:
    """docker-py keeps a pool per URL: every call on another container (its id in the
    URL) made a pool of `max_pool_size` slots of its own. Ours share one pool (the hook
    it overrides, `get_connection(url, proxies)`, is checked here), and each call asks
    for a connection of its own, which a stopping engine refuses instead of serving."""
    from docker.transport import UnixHTTPAdapter

    assert list(inspect_parameters(UnixHTTPAdapter.get_connection))[:3] == [
        "self",
        "url",
        "proxies",
    ]
    handler = type("Handler", (Counting,), {"connections": [], "closing": []})
    server = UnixHTTPServer(str(tmp_path / "engine.sock"), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = docker.DockerClient(
        base_url=f"unix://{tmp_path / 'engine.sock'}", version="1.41", max_pool_size=220
    )
    try:
        engine = DockerEngine(client)
        adapter = engine.api.get_adapter("http+docker://localhost")
        for index in range(12):
            engine.state(f"container{index}")
        assert len(adapter.pools) == 1
        assert len(handler.connections) == 12
        assert handler.closing == ["close"] * 12
    finally:
        client.close()
        server.shutdown()
        server.server_close()


def inspect_parameters(function: Any) -> Any:
    import inspect

    return inspect.signature(function).parameters

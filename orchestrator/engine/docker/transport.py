"""The connection to a local engine's socket: one pool for every call, a connection each.

This hooks docker-py's private transport API (`UnixHTTPAdapter.get_connection(url,
proxies)`), so the docker dependency is pinned in pyproject.toml to the versions where
that is the hook; tests/unit/test_engine_errors.py checks it. A change of docker-py's
transport is met here and nowhere else.
"""

from __future__ import annotations

from typing import Any

from docker.transport import UnixHTTPAdapter

# How docker-py names a client of the engine's unix socket.
UNIX_SOCKET_URL = "http+docker://"


class _OnePoolAdapter(UnixHTTPAdapter):  # type: ignore[misc]
    """docker-py's unix-socket adapter keeps a connection pool per request URL, and
    every call on a container has a URL of its own (its id): each start, wait, logs and
    remove made a new pool that filled a queue of `max_pool_size` slots (the service's
    is 220) and emptied it again when evicted. One pool for the socket.

    Each request still asks for a connection of its own (`Connection: close`), as it
    had one before: a dockerd that is stopping closes its listener but goes on serving
    the connections it has, and answered a start on a kept-alive one with "failed to
    update store for object type *libnetwork.endpoint" (a run failed) where a new
    connection is refused (the engine is unavailable: the start waits for it).

    The docker dependency is pinned to the versions where `get_connection(url,
    proxies)` is the hook (tests/unit/test_engine_errors.py checks it)."""

    def get_connection(self, url: str, proxies: Any = None) -> Any:
        return super().get_connection(UNIX_SOCKET_URL, proxies)

    def add_headers(self, request: Any, **kwargs: Any) -> None:
        if str(request.headers.get("Connection", "")).lower() != "upgrade":  # attach, exec
            request.headers["Connection"] = "close"


def _share_one_pool(api: Any) -> None:
    """Mount the one-pool adapter on an API client of the local socket (left alone if
    someone mounted an adapter of their own)."""
    adapter = api.get_adapter(UNIX_SOCKET_URL)
    if type(adapter) is not UnixHTTPAdapter:
        return
    api.mount(
        UNIX_SOCKET_URL,
        _OnePoolAdapter(
            f"http+unix://{adapter.socket_path}",
            adapter.timeout,
            max_pool_size=adapter.max_pool_size,
        ),
    )
    adapter.close()

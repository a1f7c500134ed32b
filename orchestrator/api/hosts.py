"""The `Host` check: a request must name this service, so that a page of another site
whose name an attacker pointed at this address (DNS rebinding) is refused before any
route sees it.

Answered: any IP address (no name was resolved, so nothing could be rebound),
`localhost`, the host of `ORCHESTRATOR_PUBLIC_URL`, and the names of
`ORCHESTRATOR_HTTP_ALLOWED_HOSTS` (`*.example.org` for its subdomains, `*` for any name).
Anything else gets 421 and a JSON error naming the setting.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from orchestrator.errors import InvalidInputError, quote
from orchestrator.settings import HTTP_ALLOWED_HOSTS_ENV

_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")


@dataclass(frozen=True)
class AllowedHosts:
    names: frozenset[str]
    suffixes: tuple[str, ...] = ()  # ".example.org" for "*.example.org"
    any_name: bool = False

    def allows(self, header: str) -> bool:
        """Whether a `Host` header value names this service."""
        host = _host_of(header)
        if host is None:
            return False
        if _is_address(host) or self.any_name or host in self.names:
            return True
        return any(host.endswith(suffix) for suffix in self.suffixes)


def _host_of(header: str) -> str | None:
    """The host of `host[:port]` or `[v6]:port`, lower case, without a trailing dot."""
    text = header.strip().lower()
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return inside
    host, colon, port = text.partition(":")
    if colon and not port.isdigit():
        return None
    return host.rstrip(".")


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def allowed_hosts(public_url: str | None, extra: Iterable[str]) -> AllowedHosts:
    """The names this service answers to; InvalidInputError for an entry that is no name."""
    names = {"localhost"}
    suffixes = []
    any_name = False
    if public_url:
        host = urlsplit(public_url).hostname
        if host:
            names.add(host.rstrip("."))
    for entry in extra:
        raw = entry.strip().lower()
        name = raw.rstrip(".")
        if raw == "*":
            any_name = True
        elif name.startswith("*.") and _is_name(name[2:]):
            suffixes.append(name[1:])
        elif _is_name(name):
            names.add(name)
        else:
            raise InvalidInputError(
                f"{HTTP_ALLOWED_HOSTS_ENV}: {quote(entry)} is not a host name "
                "(like cron.example.org, *.example.org or *)"
            )
    return AllowedHosts(frozenset(names), tuple(suffixes), any_name)


def _is_name(name: str) -> bool:
    return bool(name) and set(name) <= _NAME_CHARACTERS and ".." not in name


class HostCheck:
    """ASGI middleware: a request whose `Host` this service does not answer to gets 421.
    A request without a `Host` (HTTP/1.0) passes: every browser sends one."""

    def __init__(self, app: Any, hosts: AllowedHosts) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            header = next((v for k, v in scope["headers"] if k == b"host"), None)
            if header is not None and not self.hosts.allows(header.decode("latin-1")):
                await _refuse(send, header.decode("latin-1"))
                return
        await self.app(scope, receive, send)


async def _refuse(send: Any, header: str) -> None:
    message = (
        f"this service does not answer to the host {quote(header[:100])}: "
        f"add it to {HTTP_ALLOWED_HOSTS_ENV} (or set ORCHESTRATOR_PUBLIC_URL)"
    )
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 421,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

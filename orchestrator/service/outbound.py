"""The guard around one delivery's sockets (a webhook's, a ping's, Apprise's): each
connect, and each datagram sent, in the delivering thread is checked against the policy
on the address about to be reached, and each socket opened is shut at the delivery's
deadline, however slowly the receiver answers.

Python's audit event `socket.connect` names the address the socket connects to, after
the name was resolved, so a name that resolves to 127.0.0.1 (or rebinds between two
look-ups) is caught as 127.0.0.1; it also sees the sockets of libraries (Apprise's
requests, smtplib) that do their own HTTP. A connect by name (resolved in C, where the
address cannot be seen) and a connect to a local (unix) socket are refused."""

from __future__ import annotations

import contextvars
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from orchestrator.policies.destinations import (
    Address,
    AllowedHosts,
    parse_address,
    unmapped,
    why_refused,
)
from orchestrator.settings import NOTIFY_ALLOWED_HOSTS_ENV

# The events that reach an address: a connect, and a datagram sent without one.
_EVENTS = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg"})
_ENGINE_DEFAULT_PORTS = (2375, 2376)


class RefusedDestinationError(OSError):
    """A connect the policy refuses, in one line (an OSError: clients try the next
    address of the name, then give up with it)."""


@dataclass(frozen=True)
class DeliveryPolicy:
    """Where deliveries may connect, and how long one may take in all."""

    allowed: AllowedHosts = field(default_factory=AllowedHosts)
    # DOCKER_HOST: when tcp://, its host and port are never a receiver.
    engine_address: str | None = None
    deadline_seconds: float = 10.0

    def engine_endpoint(self) -> tuple[str, tuple[int, ...]] | None:
        if not self.engine_address or not self.engine_address.startswith("tcp://"):
            return None
        parsed = urllib.parse.urlsplit(self.engine_address)
        try:
            port = parsed.port
        except ValueError:
            return None
        if not parsed.hostname:
            return None
        return parsed.hostname, (port,) if port else _ENGINE_DEFAULT_PORTS


class Guard:
    """One delivery's watch: what it refused, whether its deadline passed."""

    def __init__(self, policy: DeliveryPolicy) -> None:
        self.policy = policy
        self.deadline = time.monotonic() + policy.deadline_seconds
        self.refusal: str | None = None
        self.expired = False
        self._closed = False
        self._lock = threading.Lock()
        # Duplicates of the delivery's sockets: shutting one down ends the connection
        # under the original too, also once TLS has taken the original's descriptor.
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(policy.deadline_seconds, self._expire)
        self._timer.daemon = True

    def check(self, sock: object, address: object) -> None:
        if address is None:  # a datagram on a connected socket: checked at its connect
            return
        why = self._why_refused(address)
        if why is not None:
            if self.refusal is None:
                self.refusal = why
            raise RefusedDestinationError(why)
        if isinstance(sock, socket.socket):
            self._track(sock)

    def _why_refused(self, address: object) -> str | None:
        if self._closed or self.expired:
            return f"the delivery's {self.policy.deadline_seconds:g} s were up"
        if not isinstance(address, tuple) or len(address) < 2:
            return "refused: a local socket is no receiver"
        host, port = address[0], address[1]
        ip = parse_address(host) if isinstance(host, str) else None
        if ip is None:
            return f"refused: a connect to {host!r} by name, not by address, cannot be checked"
        shown = f"{ip}:{port}" if ip.version == 4 else f"[{ip}]:{port}"
        if isinstance(port, int) and self._is_engine(ip, port):
            return f"refused: {shown} is the Docker engine's address (DOCKER_HOST)"
        kind = why_refused(ip)
        if kind is not None and not self._granted(ip):
            return f"refused: {shown} is {kind}; {NOTIFY_ALLOWED_HOSTS_ENV} can allow it"
        return None

    def _granted(self, ip: Address) -> bool:
        allowed = self.policy.allowed
        return allowed.covers(ip) or any(unmapped(ip) in _addresses(n) for n in allowed.names)

    def _is_engine(self, ip: Address, port: int) -> bool:
        engine = self.policy.engine_endpoint()
        if engine is None or port not in engine[1]:
            return False
        return unmapped(ip) in _addresses(engine[0])

    def _track(self, sock: socket.socket) -> None:
        left = max(self.deadline - time.monotonic(), 0.001)
        timeout = sock.gettimeout()
        if timeout is None or timeout > left:  # (a non-blocking socket, 0, stays so)
            sock.settimeout(left)
        try:
            twin = sock.dup()
        except OSError:
            return
        with self._lock:
            if self._closed or self.expired:
                twin.close()
                raise RefusedDestinationError(
                    f"the delivery's {self.policy.deadline_seconds:g} s were up"
                )
            self._sockets.append(twin)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for twin in self._sockets:
                with suppress(OSError):
                    twin.shutdown(socket.SHUT_RDWR)

    def start(self) -> None:
        self._timer.start()

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._closed = True
            for twin in self._sockets:
                twin.close()
            self._sockets.clear()


def _addresses(host: str) -> set[Address]:
    """The addresses a host name (or address) resolves to; none when it does not."""
    literal = parse_address(host.strip("[]"))
    if literal is not None:
        return {unmapped(literal)}
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return set()
    addresses = set()
    for *_, sockaddr in found:
        parsed = parse_address(str(sockaddr[0]))
        if parsed is not None:
            addresses.add(unmapped(parsed))
    return addresses


_current: contextvars.ContextVar[Guard | None] = contextvars.ContextVar(
    "delivery_guard", default=None
)
_hooked = threading.Lock()
_installed: list[bool] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event in _EVENTS:
        guard = _current.get()
        if guard is not None:
            guard.check(args[0], args[1] if len(args) > 1 else None)


def _install() -> None:
    with _hooked:
        if not _installed:  # an audit hook stays for the process: added once
            sys.addaudithook(_audit)
            _installed.append(True)


@contextmanager
def guarded(policy: DeliveryPolicy) -> Iterator[Guard]:
    """Within: this thread's (and its copied contexts') connects obey the policy."""
    _install()
    guard = Guard(policy)
    token = _current.set(guard)
    guard.start()
    try:
        yield guard
    finally:
        _current.reset(token)
        guard.close()

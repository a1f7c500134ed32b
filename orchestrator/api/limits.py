"""Bounds of the HTTP edge, before any route runs: a request body is counted as it
arrives and refused past its route's cap (413) or once it has taken too long (408), a
request's line and headers must arrive within a deadline (a client that sends them a
byte at a time is cut off), and the rest of a body left unread once the answer is sent
is drained only so far.

`BodyLimit` is plain ASGI, so it holds for every route, signed in or not, whether the
route reads its body whole (the dashboard's forms) or streams it (job files). It also
refuses a request line and headers over MAX_HEADER_BYTES (431): h11 bounds only a head
that is still incomplete, so one that arrives in a single read may be larger.
`BoundedH11Protocol` is uvicorn's own HTTP/1.1 protocol with the two other bounds added:
uvicorn's keep-alive timeout stops counting as soon as any byte arrives, and it reads
(and drops) an unread body for as long as the client sends one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# A form of the dashboard (sign-in, run now, cancel) is a few hundred bytes.
DEFAULT_BODY_BYTES = 16 * 1024
# A job file sent to `POST /api/jobs/apply`; the largest job file seen is a few KiB.
APPLY_BODY_BYTES = 1024 * 1024
BODY_CAPS = {"/api/jobs/apply": APPLY_BODY_BYTES}
# The request line and headers: their size (h11's bound) and the time they may take.
MAX_HEADER_BYTES = 16 * 1024
HEADER_SECONDS = 10.0
# The time a body may take, from the route's first read of it (1 MiB in 15 s: 70 KB/s).
BODY_SECONDS = 15.0
# An unread body after the answer (a 413) is read and dropped this far, so that a client
# that reads only once it has sent everything still sees the answer; then it is cut.
DRAIN_BYTES = 4 * 1024 * 1024
DRAIN_SECONDS = 5.0


class BodyTooLarge(Exception):
    """Raised to the route that reads past the cap; BodyLimit answers it."""


class BodyTooSlow(Exception):
    """Raised to the route whose body has not come whole in time; BodyLimit answers it."""


class BodyLimit:
    """Refuse a body larger than its route's cap: at once when Content-Length says so,
    else once the bytes received pass it (the protocol drains the rest, up to a bound)."""

    def __init__(
        self, app: App, caps: Mapping[str, int] = BODY_CAPS, default: int = DEFAULT_BODY_BYTES
    ) -> None:
        self.app = app
        self.caps = dict(caps)
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = len(scope.get("raw_path", b"")) + len(scope.get("query_string", b""))
        head += sum(len(name) + len(value) + 4 for name, value in scope["headers"])
        if head > MAX_HEADER_BYTES:
            message = f"the request line and headers are larger than {MAX_HEADER_BYTES} bytes"
            await _refuse(send, 431, message)
            return
        cap = self.caps.get(scope["path"], self.default)
        headers = dict(scope["headers"])
        try:  # (h11 has checked it: at most 20 digits)
            declared = int(headers.get(b"content-length", b"0"))
        except ValueError:
            declared = cap + 1
        if declared > cap:
            await _refuse(send, 413, f"the request body is larger than {cap} bytes")
            return
        received = 0
        started = False

        deadline: float | None = None
        whole = False

        async def limited_receive() -> Message:
            nonlocal received, deadline, whole
            if whole:  # (then a route waits for the client to go: as long as it takes)
                return await receive()
            now = asyncio.get_running_loop().time()
            deadline = deadline or now + BODY_SECONDS
            try:
                message = await asyncio.wait_for(receive(), max(deadline - now, 0))
            except TimeoutError:
                raise BodyTooSlow from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyTooLarge
                whole = not message.get("more_body", False)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await _refuse(send, 413, f"the request body is larger than {cap} bytes")
        except BodyTooSlow:
            if started:
                raise
            await _refuse(send, 408, f"the request body did not arrive within {BODY_SECONDS:g}s")


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BoundedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with a deadline for each request's line and headers,
    counted from when the connection (or its previous response) is ready for one, and a
    bound on the unread body it drains after a response."""

    _header_deadline: asyncio.TimerHandle | None = None
    _drain_deadline: asyncio.TimerHandle | None = None
    _drained = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_headers()

    def data_received(self, data: bytes) -> None:
        if self._draining():
            self._drained += len(data)
            if self._drained > DRAIN_BYTES:
                self._cut()
                return
        super().data_received(data)
        self._watch_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._drained = 0
        if self._draining() and self._drain_deadline is None:
            self._drain_deadline = self.loop.call_later(DRAIN_SECONDS, self._drain_too_long)
        self._watch_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        if self._drain_deadline is not None:
            self._drain_deadline.cancel()
        super().connection_lost(exc)

    def _draining(self) -> bool:
        """Answered, while the client still sends the request's body."""
        return (
            self.cycle is not None
            and self.cycle.response_complete
            and self.conn.their_state is h11.SEND_BODY
        )

    def _drain_too_long(self) -> None:
        self._drain_deadline = None
        if self._draining():
            self._cut()

    def _cut(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def _watch_headers(self) -> None:
        """Arm the deadline while h11 waits for a request's head; disarm once it came."""
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            if self._header_deadline is None:
                self._header_deadline = self.loop.call_later(HEADER_SECONDS, self._too_slow)
        else:
            self._stop_deadline()

    def _stop_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE:
            self._cut()

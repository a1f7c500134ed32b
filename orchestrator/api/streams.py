"""Live log streams (the SSE of `GET /api/runs/{id}/logs`) that do not hold the server.

A viewer is a coroutine, not a thread: it reads a run's *feed* from its own offset and
awaits the next change. A feed is one thread per followed run, shared by all its viewers,
that reads the run's events (`Runs.watch`: the engine's stream, masked) and keeps the
last REPLAY_BYTES of output; a viewer that falls behind that window is told how much it
skipped. So a viewer holds a few KiB however long the run, and one that disconnects is
cancelled at once (Starlette cancels the response when the client goes), its slot freed.
Open streams are capped per client (its token's name, or its address for anonymous
reads: 429 past it) and in all (503); feeds are capped too (503).
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from orchestrator import shapes
from orchestrator.errors import OrchestratorError, quote
from orchestrator.operations import Ended, Output, RunEvent, Waiting, Withheld
from orchestrator.operations.runs import POLL_SECONDS
from orchestrator.records import RunRecord, RunStatus

log = logging.getLogger(__name__)

# Output a feed keeps for viewers that join late or fall behind (at most twice this held).
REPLAY_BYTES = 256 * 1024
# The most output one SSE event carries.
CHUNK_BYTES = 16 * 1024
# Runs followed at once for viewers: a thread and an engine connection each.
MAX_FEEDS = 64
# A comment line this often on a quiet stream: proxies keep it open, a dead peer shows.
KEEPALIVE_SECONDS = 15.0
# Threads for the streams' short database reads (the run looked up before a stream).
LOOKUP_THREADS = 4
RETRY_AFTER_SECONDS = 5


def sse_event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


@dataclass(frozen=True)
class View:
    """What a viewer at `offset` may send now."""

    version: int
    waiting: RunRecord | None
    withheld: RunRecord | None
    skipped: int  # bytes dropped from the window before the viewer's offset
    data: bytes
    offset: int  # the viewer's offset after `data`
    end: Ended | None
    error: str | None
    done: bool


class Feed:
    """One followed run: its events as they come, the last REPLAY_BYTES of its output."""

    def __init__(self, run_id: int, keep: int) -> None:
        self.run_id = run_id
        self.viewers = 0
        self.closing = False  # no viewer is left: the thread stops at its next event
        self.started = False  # an event other than Waiting has come
        self._keep = keep
        self._lock = threading.Lock()
        self._data = bytearray()
        self._base = 0  # the offset of _data[0] in the run's output
        self._version = 0
        self._waiting: RunRecord | None = None
        self._withheld: RunRecord | None = None
        self._end: Ended | None = None
        self._error: str | None = None
        self._done = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def add(self, event: RunEvent) -> None:
        with self._lock:
            if isinstance(event, Waiting):
                if self._waiting is not None:
                    return  # still pending: nothing new for the viewers
                self._waiting = event.run
            else:
                self.started = True
            if isinstance(event, Withheld):
                self._withheld = event.run
            elif isinstance(event, Output):
                self._data += event.data
                if len(self._data) > 2 * self._keep:  # trimmed in batches: O(1) per byte
                    cut = len(self._data) - self._keep
                    del self._data[:cut]
                    self._base += cut
            elif isinstance(event, Ended):
                self._end = event
        self._wake()

    def finish(self, error: str | None = None) -> None:
        with self._lock:
            self.started = True
            self._done = True
            if self._end is None and error is None:
                error = "the stream ended before the run's end"
            self._error = None if self._end is not None else error
        self._wake()

    def view(self, offset: int) -> View:
        with self._lock:
            skipped = max(0, self._base - offset)
            offset += skipped
            start = offset - self._base
            data = bytes(self._data[start : start + CHUNK_BYTES])
            return View(
                self._version,
                self._waiting,
                self._withheld,
                skipped,
                data,
                offset + len(data),
                self._end,
                self._error,
                self._done,
            )

    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    async def changed(self, version: int, timeout: float) -> None:
        """Once the feed has moved on from `version`, or after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiter = (loop, future)
        with self._lock:
            if self._version != version:
                return
            self._waiters.append(waiter)
        try:
            with suppress(TimeoutError):
                await asyncio.wait_for(future, timeout)
        finally:
            with self._lock, suppress(ValueError):
                self._waiters.remove(waiter)

    def _wake(self) -> None:
        with self._lock:
            self._version += 1
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            with suppress(RuntimeError):  # the loop has closed: the server stopped
                loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Feeds:
    """The feeds of the runs being viewed, one thread each, at most `limit`."""

    def __init__(
        self,
        watch: Callable[[int], Iterator[RunEvent]],
        get: Callable[[int], RunRecord],
        limit: int = MAX_FEEDS,
        keep: int = REPLAY_BYTES,
    ) -> None:
        self._watch = watch
        self._get = get
        self._limit = limit
        self._keep = keep
        self._lock = threading.Lock()
        self._feeds: dict[int, Feed] = {}

    def join(self, run_id: int) -> tuple[Feed, bool] | None:
        """The run's feed, started if need be, and whether the viewer joined before it
        started; None at the limit."""
        with self._lock:
            feed = self._feeds.get(run_id)
            if feed is None or feed.closing:
                # Feeds nobody views are not counted: each stops at its run's next event,
                # and there is one at most per run.
                if sum(1 for other in self._feeds.values() if other.viewers) >= self._limit:
                    return None
                feed = self._feeds[run_id] = Feed(run_id, self._keep)
                threading.Thread(
                    target=self._follow, args=(feed,), name=f"feed-{run_id}", daemon=True
                ).start()
            feed.viewers += 1
            return feed, not feed.started

    def leave(self, feed: Feed) -> None:
        with self._lock:
            feed.viewers -= 1

    def _abandoned(self, feed: Feed) -> bool:
        with self._lock:
            if feed.viewers <= 0:
                feed.closing = True
            return feed.closing

    def _events(self, feed: Feed) -> Generator[RunEvent]:
        """The run's events; a pending run is waited for here, not in `watch`, so that a
        feed its viewers left stops within POLL_SECONDS."""
        run = self._get(feed.run_id)
        while run.status is RunStatus.PENDING:
            yield Waiting(run)
            time.sleep(POLL_SECONDS)
            run = self._get(feed.run_id)
        yield from self._watch(feed.run_id)

    def _follow(self, feed: Feed) -> None:
        error = None
        events = self._events(feed)
        try:
            for event in events:
                feed.add(event)
                if self._abandoned(feed):
                    break
        except OrchestratorError as problem:
            error = " ".join(str(problem).splitlines()) or quote(problem)
        except Exception:
            log.exception("following run %s for its viewers failed", feed.run_id)
            error = "internal error: see the service's log"
        finally:
            with suppress(Exception):
                events.close()
            feed.finish(error)
            with self._lock:
                if self._feeds.get(feed.run_id) is feed:
                    del self._feeds[feed.run_id]


class _Gate:
    """Open streams per client and in all. Used from the event loop's thread only."""

    def __init__(self, per_client: int, total: int) -> None:
        self.per_client = per_client
        self.total = total
        self.open: dict[str, int] = {}
        self.count = 0

    def admit(self, client: str) -> tuple[int, str] | None:
        """None when admitted (counted), else the status and why not."""
        held = self.open.get(client, 0)
        if held >= self.per_client:
            return 429, (
                f"{client} has {held} log streams open, the most allowed "
                f"(ORCHESTRATOR_HTTP_STREAMS_PER_CLIENT): close one or retry later"
            )
        if self.count >= self.total:
            return 503, (
                f"the service has {self.count} log streams open, the most allowed "
                f"(ORCHESTRATOR_HTTP_MAX_STREAMS): retry later"
            )
        self.open[client] = held + 1
        self.count += 1
        return None

    def release(self, client: str) -> None:
        self.count -= 1
        left = self.open.get(client, 1) - 1
        if left > 0:
            self.open[client] = left
        else:
            self.open.pop(client, None)


class LogStreams:
    """The SSE log streams of one server: admission, feeds, the viewers' coroutines."""

    def __init__(
        self,
        watch: Callable[[int], Iterator[RunEvent]],
        get: Callable[[int], RunRecord],
        per_client: int,
        total: int,
        feeds: int = MAX_FEEDS,
    ) -> None:
        self.gate = _Gate(per_client, total)
        self.feeds = Feeds(watch, get, feeds)
        self._limiter: anyio.CapacityLimiter | None = None

    async def respond(self, client: str, lookup: Callable[[], RunRecord]) -> Response:
        """The stream of the run `lookup` reads (in a thread of the streams' few: its
        errors, 404 included, propagate), or 429/503 JSON past a cap."""
        refused = self.gate.admit(client)
        if refused is not None:
            return _refusal(*refused)
        admitted = True
        try:
            if self._limiter is None:  # made in the event loop: anyio needs one running
                self._limiter = anyio.CapacityLimiter(LOOKUP_THREADS)
            run = await anyio.to_thread.run_sync(lookup, limiter=self._limiter)
            joined = self.feeds.join(run.id)
            if joined is None:
                return _refusal(503, f"{MAX_FEEDS} runs are followed live already: retry later")
            feed, fresh = joined
            admitted = False  # the response releases it from here on
        finally:
            if admitted:
                self.gate.release(client)
        return _StreamResponse(
            self._viewer(feed, fresh),
            release=lambda: self._release(client, feed),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    def _release(self, client: str, feed: Feed) -> None:
        self.gate.release(client)
        self.feeds.leave(feed)

    async def _viewer(self, feed: Feed, fresh: bool) -> AsyncIterator[bytes]:
        # A character may be split between two chunks of output: decode across them.
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        offset = 0
        sent_waiting = sent_withheld = skipped_any = False
        while True:
            view = feed.view(offset)
            offset = view.offset
            if fresh and view.waiting is not None and not sent_waiting:
                sent_waiting = True
                yield sse_event("waiting", shapes.run_summary(view.waiting))
            if view.withheld is not None and not sent_withheld:
                sent_withheld = True
                yield sse_event("withheld", shapes.run_summary(view.withheld))
            if view.skipped:
                skipped_any = True
                decoder.reset()
                yield sse_event("skipped", {"bytes": view.skipped})
            if view.data:
                if text := decoder.decode(view.data):
                    yield sse_event("output", {"text": text})
                continue  # more may be there already
            if view.end is not None:
                if rest := decoder.decode(b"", final=True):
                    yield sse_event("output", {"text": rest})
                streamed = view.end.streamed and not skipped_any
                yield sse_event("end", {**shapes.run_detail(view.end.run), "streamed": streamed})
                return
            if view.done:
                yield sse_event("error", {"error": view.error or "the stream ended"})
                return
            await feed.changed(view.version, KEEPALIVE_SECONDS)
            if feed.version == view.version:
                yield b": keepalive\n\n"


class _StreamResponse(StreamingResponse):
    """A stream that gives its slot back however it ends: done, failed, or cancelled when
    the client went away (never started, too)."""

    def __init__(self, content: AsyncIterator[bytes], release: Callable[[], None], **kw: Any):
        super().__init__(content, **kw)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def _refusal(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": message},
        status_code=status,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )

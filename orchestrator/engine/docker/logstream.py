"""A container's log stream: Docker's multiplexed frames, timestamps, and reading to the end.

Pure: the reads themselves are the adapter's (`DockerEngine.logs`); here is what is done
with the bytes they bring, so that another adapter of the same engine API can reuse it.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

# Read in blocks this large and split here (see `demultiplex`).
LOG_BLOCK_BYTES = 256 * 1024
_STAMP = re.compile(rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z ")


class LogReader(Protocol):
    """One read of a container's log entries (the adapter's `logs` of one container)."""

    def __call__(
        self, *, follow: bool, timestamps: bool = False, since: str | None = None
    ) -> Iterator[bytes]: ...


def demultiplex(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """The payloads of Docker's multiplexed stdout/stderr stream, one per frame: each
    frame is an 8-byte header (stream type, 3 zero bytes, big-endian size) and its data."""
    buffer = bytearray()
    for block in blocks:
        buffer += block
        offset, end = 0, len(buffer)
        while end - offset >= 8:
            size = int.from_bytes(buffer[offset + 4 : offset + 8], "big")
            if end - offset - 8 < size:
                break
            yield bytes(buffer[offset + 8 : offset + 8 + size])
            offset += 8 + size
        del buffer[:offset]


def follow_then_reread(read: LogReader, await_stop: Callable[[], None]) -> Iterator[bytes]:
    """All of a container's output, live, to its very end.

    A follow stream can end before the last entries are delivered when the container
    exits (moby#43860 and kin). So entries carry timestamps, and once the stream
    ends and the container has stopped (`await_stop`), the entries after the last one
    seen are read again without following.
    """
    # Docker's timestamps are fixed-width RFC 3339 (nanoseconds), so they compare as bytes.
    last = b""
    seen_at_last = 0
    for entry in read(follow=True, timestamps=True):
        stamp, payload = _cut_timestamp(entry)
        if stamp == last:
            seen_at_last += 1
        elif stamp > last:
            last, seen_at_last = stamp, 1
        yield payload
    await_stop()
    since = None
    if last:
        nanoseconds, _ = _split_timestamp(last + b" ")
        # The engine takes `since` to the nanosecond ("SECONDS.NANOSECONDS"): from
        # just before the last entry seen, not from the second before it, which read
        # again all the output of a job that wrote it within two seconds.
        if nanoseconds > 0:
            before = nanoseconds - 1
            since = f"{before // 1_000_000_000}.{before % 1_000_000_000:09d}"
    skip_equal = seen_at_last
    for entry in read(follow=False, timestamps=True, since=since):
        stamp, payload = _cut_timestamp(entry)
        if stamp < last:
            continue
        if stamp == last and skip_equal > 0:
            skip_equal -= 1
            continue
        yield payload


def _cut_timestamp(entry: bytes) -> tuple[bytes, bytes]:
    """(timestamp, payload) of a `timestamps=True` log entry, without parsing the time."""
    space = entry.find(b" ")
    return (entry[:space], entry[space + 1 :]) if space > 0 else (b"", entry)


def _split_timestamp(entry: bytes) -> tuple[int, bytes]:
    """(nanoseconds since the epoch, payload) of a `timestamps=True` log entry."""
    match = _STAMP.match(entry)
    if match is None:
        return -1, entry
    whole = calendar.timegm((*(int(part) for part in match.groups()[:6]), 0, 0, 0))
    fraction = (match[7] or b"").ljust(9, b"0")
    return whole * 1_000_000_000 + int(fraction), entry[match.end() :]

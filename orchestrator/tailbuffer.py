"""A bounded tail of a run's output. Pure."""

from __future__ import annotations


class TailBuffer:
    """Keeps the last `limit` bytes written, whatever the total, in O(limit) memory."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._data = bytearray()

    def write(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if len(chunk) >= self.limit:
            self._data = bytearray(chunk[-self.limit :])
            return
        self._data += chunk
        # Trim in batches: at most 2 x limit is held, and each byte is moved O(1) times.
        if len(self._data) > 2 * self.limit:
            del self._data[: len(self._data) - self.limit]

    @property
    def truncated(self) -> bool:
        return self.total > self.limit

    def text(self) -> str:
        data = bytes(self._data[-self.limit :]) if self.limit else b""
        # Bytes that are not UTF-8 are kept, escaped (\xff), never replaced by U+FFFD.
        return data.decode("utf-8", errors="backslashreplace")

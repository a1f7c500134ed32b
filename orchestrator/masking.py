"""Secret values replaced by *** in a stream of output, also across chunk boundaries. Pure."""

from __future__ import annotations

from collections.abc import Iterable

MASK = b"***"


class OutputMasker:
    """Feed chunks in, get them back with every secret value replaced by `***`.

    A value may be split over two chunks, so the end of a chunk that could still begin
    a secret is held back until the next chunk (or `flush`) tells.
    """

    def __init__(self, values: Iterable[bytes]) -> None:
        # Longest first, so a secret that contains another is masked whole. A value the
        # mask itself contains ("*", "**") cannot be masked and is left alone.
        self.values = sorted(
            {value for value in values if value and value not in MASK}, key=len, reverse=True
        )
        self._held = b""

    def __bool__(self) -> bool:
        return bool(self.values)

    def feed(self, chunk: bytes) -> bytes:
        if not self.values:
            return chunk
        data = self._mask(self._held + chunk)
        keep = self._open_prefix(data)
        self._held = data[len(data) - keep :] if keep else b""
        return data[: len(data) - keep]

    def flush(self) -> bytes:
        rest, self._held = self._held, b""
        return rest

    def _mask(self, data: bytes) -> bytes:
        # Again until none is left: a mask beside a secret's first bytes can form one
        # anew ("a*" in "aa*"). Each pass removes bytes that are not "*", so it ends.
        while any(value in data for value in self.values):
            for value in self.values:
                data = data.replace(value, MASK)
        return data

    def _open_prefix(self, data: bytes) -> int:
        """The length of the longest end of `data` that a secret begins with."""
        longest = 0
        for value in self.values:
            for size in range(min(len(value) - 1, len(data)), longest, -1):
                if data.endswith(value[:size]):
                    longest = size
                    break
        return longest

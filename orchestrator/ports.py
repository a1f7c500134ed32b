"""The host port pool: ranges and the order in which free ports are tried. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from orchestrator.errors import InvalidInputError
from orchestrator.errors import PinnedPortTakenError as PinnedPortTakenError
from orchestrator.errors import PortPoolExhaustedError as PortPoolExhaustedError


@dataclass(frozen=True)
class PortRange:
    first: int
    last: int

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.first <= port <= self.last

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"


def parse_port_range(text: str) -> PortRange:
    match = re.fullmatch(r"\s*([0-9]{1,30})\s*-\s*([0-9]{1,30})\s*", text)
    if match is None:
        raise InvalidInputError(f"port range {text!r} is not FIRST-LAST (like 20000-20999)")
    first, last = int(match[1]), int(match[2])
    if not 1 <= first <= last <= 65535:
        raise InvalidInputError(f"port range {text!r} must lie within 1-65535, first <= last")
    return PortRange(first, last)


def candidate_ports(pool: PortRange, taken: set[int], start: int) -> Iterator[int]:
    """Free ports of the pool, from `start` round to the one before it.

    Starting where the last lease ended (instead of always at the bottom) spreads
    concurrent schedulers over the pool, so they rarely race for the same port.
    """
    offset = (start - pool.first) % pool.size
    for step in range(pool.size):
        port = pool.first + (offset + step) % pool.size
        if port not in taken:
            yield port

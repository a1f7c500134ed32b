"""The guards of the dashboard's sign-in: a form token bound to a pre-session cookie
(so that another site cannot sign a browser in, or out), and a limit on failed
sign-ins per client address and overall (so that tokens cannot be guessed at speed,
nor the audit trail flooded).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

# The browser's pre-session cookie: a random value that the sign-in form's token is
# derived from. Another site can neither read it nor (SameSite=Strict) send it.
SIGNIN_COOKIE = "orchestrator_signin"
# Failed sign-ins allowed in a window of WINDOW_SECONDS, per client address (an IPv6
# client by its /64, which one machine usually holds whole) and for all clients together.
PER_CLIENT = 5
OVERALL = 30
WINDOW_SECONDS = 60.0


class FormTokens:
    """Tokens of the dashboard's forms: an HMAC, under a key of this process, of the
    value they are bound to (the sign-in cookie, or the pre-session cookie)."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def of(self, purpose: str, bound_to: str) -> str:
        message = f"{purpose}\n{bound_to}".encode("utf-8", "surrogateescape")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def matches(self, given: str, purpose: str, bound_to: str) -> bool:
        """A missing binding never matches: a form posted without the cookie is refused."""
        # As bytes: compare_digest refuses a str with non-ASCII letters (a TypeError).
        expected = self.of(purpose, bound_to).encode()
        return bool(bound_to) and hmac.compare_digest(
            given.encode("utf-8", "surrogateescape"), expected
        )


def new_presession() -> str:
    return secrets.token_urlsafe(24)


def client_key(address: str | None) -> str:
    """What failures are counted by: the address, an IPv6 one by its /64."""
    if not address:
        return "unknown"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{parsed}/64", strict=False))
    return str(parsed)


@dataclass
class FailureLimiter:
    """Failed sign-ins in a sliding window. Memory stays bounded: a failure is counted
    only while the overall limit allows it, so at most `overall` are held."""

    per_client: int = PER_CLIENT
    overall: int = OVERALL
    window: float = WINDOW_SECONDS
    clock: Callable[[], float] = time.monotonic
    _all: deque[tuple[float, str]] = field(default_factory=deque)

    def _forget_old(self, now: float) -> None:
        while self._all and self._all[0][0] <= now - self.window:
            self._all.popleft()

    def retry_after(self, client: str) -> int | None:
        """Seconds until `client` may try again, or None when it may try now."""
        now = self.clock()
        self._forget_old(now)
        mine = [at for at, who in self._all if who == client]
        if len(mine) >= self.per_client:
            return max(1, math.ceil(mine[-self.per_client] + self.window - now))
        if len(self._all) >= self.overall:
            return max(1, math.ceil(self._all[-self.overall][0] + self.window - now))
        return None

    def failed(self, client: str) -> bool:
        """Count a failure; whether `client` is refused from now on."""
        self._all.append((self.clock(), client))
        return self.retry_after(client) is not None

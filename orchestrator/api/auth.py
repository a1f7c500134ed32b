"""API tokens: who may read and who may write.

Tokens come from `ORCHESTRATOR_API_TOKEN` (one write token, named `default`) and from a
tokens file (`ORCHESTRATOR_API_TOKENS_FILE`), one `name:token[:read]` a line, so that each
operator or system has its own and read-only tokens exist. A token is never printed: a
bad line is named by its file and line number.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.api.hosts import AllowedHosts, allowed_hosts
from orchestrator.errors import InvalidInputError, quote
from orchestrator.units import whole_number

# Long enough that guessing is hopeless (openssl rand -hex 16 gives 32).
MIN_TOKEN_LENGTH = 16
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces (a header value)


@dataclass(frozen=True)
class Principal:
    """Who a request comes from."""

    name: str
    can_write: bool


@dataclass(frozen=True)
class _Token:
    principal: Principal
    secret: bytes


class Tokens:
    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens

    @property
    def configured(self) -> bool:
        return bool(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def identify(self, presented: str) -> Principal | None:
        """The token's owner, or None. Every token is compared, in constant time each,
        so the answer's timing tells nothing about which one came close."""
        given = presented.encode("utf-8", "surrogateescape")
        found = None
        for token in self._tokens:
            if hmac.compare_digest(token.secret, given):
                found = token.principal
        return found


@dataclass(frozen=True)
class ApiSettings:
    tokens: Tokens
    read_open: bool = False
    metrics_need_token: bool = False
    # The Host names answered to (hosts.py), and whether cookies are Secure: the public
    # URL is https, so the browser reaches us over TLS (a proxy's).
    allowed_hosts: AllowedHosts = field(default_factory=lambda: allowed_hosts(None, ()))
    secure_cookies: bool = False
    # Open log streams (SSE) allowed to one token or anonymous address, and in all.
    streams_per_client: int = 20
    max_streams: int = 500


def _checked(token: str, where: str) -> bytes:
    if not _TOKEN.fullmatch(token):
        raise InvalidInputError(f"{where}: a token is printable ASCII without spaces")
    if len(token) < MIN_TOKEN_LENGTH:
        raise InvalidInputError(
            f"{where}: a token needs at least {MIN_TOKEN_LENGTH} characters "
            "(make one with: openssl rand -hex 16)"
        )
    return token.encode()


def load_tokens(env_token: str | None, tokens_file: str | None) -> Tokens:
    """The tokens configured; InvalidInputError naming the file and line of a bad one."""
    tokens: list[_Token] = []
    if env_token:
        tokens.append(_Token(Principal("default", True), _checked(env_token, "API token")))
    if tokens_file:
        try:
            text = Path(tokens_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or error
            raise InvalidInputError(
                f"API tokens file {tokens_file}: cannot read: {reason}"
            ) from None
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            where = f"{tokens_file}:{number}"
            name, colon, rest = line.partition(":")
            secret, _, mode = rest.partition(":")
            if not colon or not secret:  # (never quote the line: it may be all token)
                raise InvalidInputError(f"{where}: expected name:token[:read]")
            if not _NAME.fullmatch(name):
                raise InvalidInputError(
                    f"{where}: {quote(name[:40])} is not a token name (letters, digits, . _ @ -)"
                )
            if mode not in ("", "read", "write"):
                raise InvalidInputError(
                    f"{where}: the third field is 'read' or 'write', not {quote(mode[:20])}"
                )
            tokens.append(_Token(Principal(name, mode != "read"), _checked(secret, where)))
    names = [token.principal.name for token in tokens]
    for name in names:
        if names.count(name) > 1:
            raise InvalidInputError(f"API tokens: the name {name!r} is given twice")
    secrets = [token.secret for token in tokens]
    if len(set(secrets)) != len(secrets):
        raise InvalidInputError("API tokens: two names share one token")
    return Tokens(tokens)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:8080` for IPv6) into (host, port); port 0 lets the system pick."""
    text = value.strip()
    host, colon, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = whole_number(port_text, 65535)
    if not colon or not host or port is None:
        raise InvalidInputError(
            f"--http {quote(value)} is not HOST:PORT (like 127.0.0.1:8080 or [::1]:8080)"
        )
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise InvalidInputError(
                f"--http {quote(value)}: {quote(host)} is not an IP address (or localhost)"
            ) from None
    return host, port

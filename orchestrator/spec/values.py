"""How one raw value of a job file is read: strings, mappings, lists, numbers, choices,
durations, paths and URLs, each refused with a `_Problem` that names where it sits.
Private to orchestrator.spec (its fields and files modules). Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypeVar

from orchestrator.errors import InvalidInputError, quote
from orchestrator.policies.columns import URL_LENGTH
from orchestrator.units import parse_duration

_SECRET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
_SECRET_PLACEHOLDER = re.compile(r"\{\{secret:([^}]*)\}\}")
_E = TypeVar("_E", bound=StrEnum)


class _Problem(Exception):
    """One invalid field; `path` is where it sits in the job (`retries.count`)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


# --- field parsers: each takes the raw value and the field path, returns the clean value ---


def _string(value: object, path: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _Problem(path, f"must be a string, not {_describe(value)}")
    if not allow_empty and not value.strip():
        raise _Problem(path, "must not be empty")
    return value


def _describe(value: object) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    kind = "int" if isinstance(value, int) else "float" if isinstance(value, float) else None
    return f"{kind or type(value).__name__} {quote(value)}"


def _mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Problem(path, f"must be a mapping, not {_describe(value)}")
    for key in value:
        if not isinstance(key, str):
            raise _Problem(path, f"key {quote(key)} must be a string")
    return value


def _known_keys(data: Mapping[str, Any], allowed: Iterable[str], path: str) -> None:
    allowed = list(allowed)
    for key in data:
        if key not in allowed:
            where = f"{path}.{key}" if path else key
            raise _Problem(where, f"unknown field (allowed: {', '.join(allowed)})")


def _sequence(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Problem(path, f"must be a list, not {_describe(value)}")
    return value


def _duration(value: object, path: str) -> timedelta:
    try:
        return parse_duration(value)
    except InvalidInputError as error:
        raise _Problem(path, str(error)) from None


def _integer(value: object, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Problem(path, f"must be a whole number, not {_describe(value)}")
    if not low <= value <= high:
        raise _Problem(path, f"{quote(value)} is not between {low} and {high}")
    return int(value)


def _choice(value: object, path: str, kind: type[_E]) -> _E:
    allowed = [member.value for member in kind]
    if not isinstance(value, str) or value not in allowed:
        raise _Problem(path, f"{quote(value)} is not one of {', '.join(allowed)}")
    return kind(value)


def _bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise _Problem(path, f"must be true or false, not {_describe(value)}")
    return value


def _absolute(value: object, path: str) -> str:
    text = _string(value, path)
    if not text.startswith("/"):
        raise _Problem(path, f"{quote(text)} must be an absolute path")
    return text


def _http_url(value: object, path: str, width: int = URL_LENGTH) -> str:
    """An http(s) URL with no password in it ({{secret:NAME}} placeholders allowed)."""
    return _url(value, path, ("http", "https"), width)


def _url(value: object, path: str, schemes: tuple[str, ...] | None, width: int = URL_LENGTH) -> str:
    """A URL of one of `schemes` (None: any, as Apprise's are), with no password in it
    ({{secret:NAME}} placeholders allowed), of at most `width` characters (what the
    outbox's column holds: a longer one could never be queued)."""
    url = _string(value, path).strip()
    if len(url) > width:
        raise _Problem(path, f"is {len(url)} characters long, at most {width}")
    scheme, _, rest = url.partition("://")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    host = authority.rsplit("@", 1)[-1]
    known = schemes is None and re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme.lower())
    if (
        not (known or scheme.lower() in (schemes or ()))
        or not rest
        or (schemes is not None and not host)
        or any(c.isspace() for c in url)
    ):
        if schemes is None:
            raise _Problem(
                path, f"{quote(url)} is not an Apprise URL (like mailto://, slack://, ntfy://)"
            )
        expected = " or ".join(f"{name}://" for name in schemes)
        raise _Problem(path, f"{quote(url)} is not an {expected} URL")
    for name in _SECRET_PLACEHOLDER.findall(url):
        if not _SECRET_NAME.fullmatch(name):
            raise _Problem(path, f"{{{{secret:{quote(name)}}}}} names no secret file")
    if "@" in authority and not _SECRET_PLACEHOLDER.search(authority.rsplit("@", 1)[0]):
        raise _Problem(
            path,
            "a password in the URL would be stored and shown: write {{secret:NAME}} "
            "instead, read from the secrets directory at delivery",
        )
    return url

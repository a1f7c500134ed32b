"""What every drop-in translator returns, and job names made valid for us."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from orchestrator.spec.fields import NAME_MAX_LENGTH, NAME_PATTERN


@dataclass(frozen=True)
class Translated:
    """One job in our keys; `original` is the name the other tool gave it."""

    name: str
    mapping: dict[str, Any]
    original: str


@dataclass
class Translation:
    """The jobs carried over and one line per option or job that was not."""

    jobs: list[Translated] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def extend(self, other: Translation) -> None:
        self.jobs.extend(other.jobs)
        self.dropped.extend(other.dropped)


class Refused(ValueError):
    """A job (or a value of it) that cannot be carried over: the message says why."""


def normalise_name(original: str) -> str:
    """A job name valid for us (NAME_PATTERN, at most 63 characters) for `original`.

    Lower case; runs of other characters become `-`; a name that had to be cut keeps a
    short hash of the original so that two long names stay apart.
    """
    name = re.sub(r"[^a-z0-9_.-]+", "-", original.lower()).strip("-_.") or "job"
    if not name[0].isalnum():
        name = f"j{name}"
    if len(name) > NAME_MAX_LENGTH:
        digest = hashlib.sha256(original.encode()).hexdigest()[:8]
        name = f"{name[: NAME_MAX_LENGTH - 9].rstrip('-_.')}-{digest}"
    assert NAME_PATTERN.fullmatch(name), name
    return name


def described(tool: str, kind: str, original: str) -> str:
    """The description that keeps the other tool's name of a job visible."""
    if normalise_name(original) == original:
        return f"from {tool} {kind} {original!r}"
    return f"from {tool} {kind} {original!r} (renamed: not a valid name here)"


def truthy(value: str) -> bool:
    """Go's strconv.ParseBool and Python's usual spellings of true."""
    return value.strip().lower() in ("1", "t", "true", "yes", "on", "y")

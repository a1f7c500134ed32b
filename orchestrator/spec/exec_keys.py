"""The keys of exec jobs (`kind`, `container`, `selector`, `pick`) and of per-job container
labels (`labels`), and the checks that keep run-only and exec-only keys apart. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from orchestrator.errors import quote
from orchestrator.labels import RESERVED_LABELS
from orchestrator.spec.model import JobKind
from orchestrator.spec.values import _describe, _mapping, _Problem, _string

# Docker's container names ([a-zA-Z0-9][a-zA-Z0-9_.-]+, an optional leading /) and ids.
_CONTAINER = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}")
_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,254}")
RESERVED_LABEL_PREFIX = "orchestrator."
# Keys that shape a container we create: an exec runs in one that exists already.
RUN_ONLY = (
    "image",
    "entrypoint",
    "secrets",
    "volumes",
    "ports",
    "network",
    "resources",
    "pull",
    "privileged",
    "host_network",
    "host_pid",
    "docker_socket",
    "labels",
)
EXEC_ONLY = ("container", "selector", "pick")


def container_ref(value: object) -> str:
    name = _string(value, "container").strip()
    if not _CONTAINER.fullmatch(name):
        raise _Problem("container", f"{quote(name)} is not a container name or id")
    return name.lstrip("/")


def _label_text(value: object, path: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Problem(path, f"must be a string, not {_describe(value)}")
    text = str(value)
    if any(ord(c) < 32 for c in text):
        raise _Problem(path, "contains a control character")
    return text


def _label_pairs(value: object, path: str) -> tuple[tuple[str, str], ...]:
    data = _mapping(value, path)
    if not data:
        raise _Problem(path, "names no label")
    pairs = []
    for key, item in data.items():
        if not _LABEL_KEY.fullmatch(key):
            raise _Problem(f"{path}.{key}", "is not a label name")
        pairs.append((key, _label_text(item, f"{path}.{key}")))
    return tuple(sorted(pairs))


def selector(value: object) -> tuple[tuple[str, str], ...]:
    return _label_pairs(value, "selector")


def labels(value: object) -> tuple[tuple[str, str], ...]:
    """A run job's own container labels; ours (`orchestrator.*`) are refused."""
    pairs = _label_pairs(value, "labels")
    for key, _ in pairs:
        if key.startswith(RESERVED_LABEL_PREFIX) or key in RESERVED_LABELS:
            raise _Problem(
                f"labels.{key}", f"labels starting {RESERVED_LABEL_PREFIX} are set by us"
            )
    return pairs


def check_kind(data: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    """Run-only keys on an exec job, exec-only keys on a run job, a missing target."""
    given = {key for key, value in data.items() if value is not None}
    if values.get("kind", JobKind.RUN) is JobKind.RUN:
        for key in EXEC_ONLY:
            if key in given:
                raise _Problem(key, "is for exec jobs: add `kind: exec`, or remove it")
        if "image" not in given:
            raise _Problem("image", "is required")
        return
    if "container" in given and "selector" in given:
        raise _Problem("container", "cannot be combined with selector: give one target")
    if "container" not in given and "selector" not in given:
        image = " (an exec job runs in a running container, not an image)" * ("image" in given)
        raise _Problem("container", f"or selector is required for kind: exec{image}")
    for key in RUN_ONLY:
        if key in given:
            raise _Problem(
                key, "is for run jobs: an exec job runs in a container that exists already"
            )
    if "pick" in given and "selector" not in given:
        raise _Problem("pick", "chooses among the containers of a selector: give one")
    if "command" not in given:
        raise _Problem("command", "is required for kind: exec")

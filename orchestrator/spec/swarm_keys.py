"""The Swarm backend's job keys: `placement` (which nodes may take the task) and
`bind_on_every_node` (read by fields.py; the Docker backend refuses `placement`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from orchestrator.spec.values import _known_keys, _mapping, _Problem, _sequence, _string

# Swarm's own grammar: `node.role==manager`, `node.labels.zone!=b`, `engine.labels.x==y`.
_CONSTRAINT = re.compile(r"^(node|engine)\.[A-Za-z0-9_.-]+ *(==|!=) *[^=!]\S*$")
_PREFERENCE = re.compile(r"^(node|engine)\.labels\.[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Placement:
    constraints: tuple[str, ...] = ()
    preferences: tuple[str, ...] = ()  # spread over these node labels

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.constraints:
            data["constraints"] = list(self.constraints)
        if self.preferences:
            data["preferences"] = list(self.preferences)
        return data


def parse_placement(value: object) -> Placement:
    data = _mapping(value, "placement")
    _known_keys(data, ("constraints", "preferences"), "placement")
    constraints = tuple(
        _matching(item, f"placement.constraints[{index}]", _CONSTRAINT, "node.labels.zone==a")
        for index, item in enumerate(
            _sequence(data.get("constraints", []), "placement.constraints")
        )
    )
    preferences = tuple(
        _matching(item, f"placement.preferences[{index}]", _PREFERENCE, "node.labels.zone")
        for index, item in enumerate(
            _sequence(data.get("preferences", []), "placement.preferences")
        )
    )
    return Placement(constraints, preferences)


def _matching(value: object, path: str, pattern: re.Pattern[str], example: str) -> str:
    text = _string(value, path).strip()
    if not pattern.match(text):
        raise _Problem(path, f"{text!r} is not a Swarm placement expression (like {example})")
    return text

"""Label discovery over the docker SDK: the containers that carry labels, in one listing
call, and the engine's event stream of their start, die, destroy and rename."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import suppress
from typing import Any

from orchestrator.engine.contract import ContainerEvent, LabelledContainer
from orchestrator.engine.docker.translate import _translated

EVENTS = ("start", "die", "destroy", "rename")


def _filters(labels: Mapping[str, str]) -> dict[str, Any]:
    return {"label": [f"{key}={value}" for key, value in labels.items()]} if labels else {}


def list_containers(api: Any, labels: Mapping[str, str]) -> list[LabelledContainer]:
    with _translated("listing containers"):
        found: list[dict[str, Any]] = api.containers(all=True, filters=_filters(labels))
    return [_container(raw) for raw in found]


def _container(raw: Mapping[str, Any]) -> LabelledContainer:
    names = raw.get("Names") or []
    name = str(names[0]).lstrip("/") if names else str(raw["Id"])[:12]
    networks = (raw.get("NetworkSettings") or {}).get("Networks") or {}
    volumes = tuple(
        str(mount["Name"])
        for mount in raw.get("Mounts") or []
        if mount.get("Type") == "volume" and mount.get("Name")
    )
    return LabelledContainer(
        id=str(raw["Id"]),
        name=name,
        labels=dict(raw.get("Labels") or {}),
        running=raw.get("State") == "running",
        created=float(raw.get("Created") or 0),
        networks=tuple(sorted(networks)),
        volumes=volumes,
    )


class DockerContainerEvents:
    """The engine's /events stream, container events only; close() ends it."""

    def __init__(self, api: Any, labels: Mapping[str, str]) -> None:
        filters = {"type": ["container"], "event": list(EVENTS), **_filters(labels)}
        with _translated("following the engine's events"):
            self._stream = api.events(decode=True, filters=filters)

    def __iter__(self) -> Iterator[ContainerEvent]:
        with _translated("following the engine's events"):
            for raw in self._stream:
                actor = raw.get("Actor") or {}
                ident = raw.get("id") or actor.get("ID")
                action = raw.get("Action") or raw.get("status")
                attributes = actor.get("Attributes")
                labels = (
                    {str(k): str(v) for k, v in attributes.items()}
                    if isinstance(attributes, dict)
                    else None
                )
                if ident and action:
                    yield ContainerEvent(str(action), str(ident), labels)

    def close(self) -> None:
        with suppress(Exception):
            self._stream.close()

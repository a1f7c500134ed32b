"""Host path translation for Docker-outside-of-Docker. Pure: no engine, no files.

A bind mount asked for by the scheduler is resolved by the engine on the HOST. When the
scheduler runs in a container, a path as it sees it (`/data/reports`) must become the
host path that backs it (`/srv/scheduler-data/reports`). The engine tells us our own
mounts; this module maps a job's volumes through that table.

Finding our own container (and its mount table) is orchestrator.engine.selfcontainer's part.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator.errors import HostPathError as HostPathError

if TYPE_CHECKING:  # (every command checks its settings: no YAML parser for that)
    from orchestrator.spec import VolumeSpec

VOLUME_SUBPATH_MIN_API = (1, 45)


@dataclass(frozen=True)
class ScannedMount:
    """One mount of the scheduler's own container, as the engine reports it."""

    type: str  # bind | volume | tmpfs | npipe | ...
    destination: str
    source: str = ""  # host path for bind; the volume's name for volume
    read_only: bool = False


@dataclass(frozen=True)
class MountPlan:
    """One mount to give the job's container."""

    type: str  # bind | volume
    source: str  # host path, or volume name
    target: str
    read_only: bool = False
    subpath: str | None = None  # inside a named volume (engine API >= 1.45)
    # A job's own bind, its source checked by the policy: pinned until the engine
    # mounts it (orchestrator.runner.pinning).
    checked: bool = False
    # A bind's source as the scheduler sees it: (the root of the mount it lies on, the
    # path), for the writable-parent rule where it cannot be pinned.
    seen_at: tuple[str, str] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class NetworkRef:
    """A network as the engine names it: its full id and its name."""

    id: str
    name: str


@dataclass(frozen=True)
class SelfContainer:
    """Where the scheduler runs: None id means on the host itself."""

    container_id: str | None
    how: str
    mounts: tuple[ScannedMount, ...] = ()
    # The networks our container is attached to (whoever joins one can reach us, and
    # whatever else is on it: our database, the engine's proxy).
    networks: tuple[NetworkRef, ...] = ()
    # The compose project of the scheduler's container (its label), if any.
    project: str | None = None

    @property
    def in_container(self) -> bool:
        return self.container_id is not None


@dataclass(frozen=True)
class VolumeFacts:
    """What the engine says of a named volume."""

    name: str
    driver: str = "local"
    # The host path its driver options bind (`o=bind`, `device=...`), if any.
    bind_device: str | None = None
    # The compose project that made it (`com.docker.compose.project`), if any.
    project: str | None = None


ON_HOST = SelfContainer(container_id=None, how="not in a container")


def _normal(path: str) -> str:
    return path.rstrip("/") or "/"


def _covers(parent: str, path: str) -> bool:
    """Whether `parent` equals `path` or is a parent of it at a `/` boundary."""
    return path == parent or parent == "/" or path.startswith(parent + "/")


def _rest(parent: str, path: str) -> str:
    """`path` relative to `parent`, without a leading slash ('' when equal)."""
    if path == parent:
        return ""
    return path[len(parent) :].lstrip("/") if parent != "/" else path.lstrip("/")


def _join(base: str, rest: str) -> str:
    if not rest:
        return base
    return f"{base.rstrip('/')}/{rest}"


def covering_mount(mounts: Iterable[ScannedMount], path: str) -> ScannedMount | None:
    """The mount with the longest destination that equals `path` or is a parent of it."""
    candidates = [m for m in mounts if _covers(_normal(m.destination), path)]
    return max(candidates, key=lambda m: len(_normal(m.destination)), default=None)


def _translate_one(
    mount: ScannedMount | None,
    requested: str,
    target: str,
    read_only: bool,
    api_version: tuple[int, int],
) -> MountPlan:
    if mount is None:
        raise HostPathError(
            f"{requested} is in the scheduler container's own filesystem, which no sibling "
            f"container can see: bind-mount a host directory into the scheduler at "
            f"{requested} (or at a parent of it)"
        )
    destination = _normal(mount.destination)
    rest = _rest(destination, requested)
    read_only = read_only or mount.read_only
    if mount.type == "bind":
        seen_at = (destination, requested)
        return MountPlan("bind", _join(mount.source, rest), target, read_only, seen_at=seen_at)
    if mount.type == "volume":
        if not rest:
            return MountPlan("volume", mount.source, target, read_only)
        if api_version < VOLUME_SUBPATH_MIN_API:
            raise HostPathError(
                f"{requested} lies inside the named volume {mount.source!r} (mounted at "
                f"{destination}); sharing a sub-folder of a volume needs engine API 1.45 or "
                f"newer, this engine speaks {api_version[0]}.{api_version[1]}: mount the "
                f"volume itself ({destination}), or a host directory at {requested}"
            )
        return MountPlan("volume", mount.source, target, read_only, subpath=rest)
    if mount.type == "tmpfs":
        raise HostPathError(
            f"{requested} is on a tmpfs of the scheduler container (at {destination}), "
            f"which no sibling container can see: bind-mount a host directory into the "
            f"scheduler at {requested} instead"
        )
    raise HostPathError(f"{requested} is on a {mount.type} mount that cannot be shared")


def translate_volume(
    volume: VolumeSpec,
    where: SelfContainer,
    api_version: tuple[int, int] = (1, 41),
) -> list[MountPlan]:
    """The mounts that give a job `volume`, seen from wherever the scheduler runs."""
    if not volume.is_bind:
        return [MountPlan("volume", volume.source, volume.target, volume.read_only)]
    requested = _normal(volume.source)
    if not where.in_container:
        seen_at = ("/", requested)
        return [MountPlan("bind", requested, volume.target, volume.read_only, seen_at=seen_at)]
    plans = [
        _translate_one(
            covering_mount(where.mounts, requested),
            requested,
            volume.target,
            volume.read_only,
            api_version,
        )
    ]
    # Mounts below the requested folder are separate filesystems: the host folder behind
    # it does not hold them, so re-create each one at the matching place in the job.
    nested = sorted(
        (
            m
            for m in where.mounts
            if _normal(m.destination) != requested and _covers(requested, _normal(m.destination))
        ),
        key=lambda m: _normal(m.destination),
    )
    for mount in nested:
        destination = _normal(mount.destination)
        target = _join(volume.target, _rest(requested, destination))
        plans.append(_translate_one(mount, destination, target, volume.read_only, api_version))
    return plans


def translate_volumes(
    volumes: Sequence[VolumeSpec],
    where: SelfContainer,
    api_version: tuple[int, int] = (1, 41),
) -> list[MountPlan]:
    plans: list[MountPlan] = []
    for volume in volumes:
        plans.extend(translate_volume(volume, where, api_version))
    return plans


def parse_api_version(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)

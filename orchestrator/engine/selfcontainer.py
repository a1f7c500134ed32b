"""Where the scheduler runs: on the host, or in which container (verified by the engine).

The detection itself is a function of what was read from /proc and the environment
(`detect_container_id`), so that every branch can be tested without a container.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

from orchestrator.engine.contract import Engine
from orchestrator.errors import SelfDetectionError as SelfDetectionError
from orchestrator.hostpaths import ON_HOST, SelfContainer
from orchestrator.settings import CONTAINER_ID_ENV

_MOUNTINFO_ID = re.compile(r"/containers/([0-9a-f]{64})/hostname")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX12 = re.compile(r"[0-9a-f]{12}")


def detect_container_id(
    *,
    override: str | None,
    in_container_marker: bool,
    mountinfo: str | None,
    cgroup: str | None,
    hostname: str | None,
    engine_hostname: str | None = None,
) -> tuple[str | None, str]:
    """Our own container id (or a prefix of it) and how it was found; (None, why) on the host.

    Order: the explicit setting, /proc/self/mountinfo (the /etc/hostname bind of Docker),
    /proc/self/cgroup (the last 64-hex id), then $HOSTNAME when it looks like a short id.
    An engine whose name is our hostname runs in our own container: we are its host.
    """
    if override:
        return override.strip(), f"setting {CONTAINER_ID_ENV}"
    if mountinfo and (found := _MOUNTINFO_ID.findall(mountinfo)):
        return found[-1], "/proc/self/mountinfo"
    if cgroup and (found := _HEX64.findall(cgroup)):
        return found[-1], "/proc/self/cgroup"
    if in_container_marker and hostname and _HEX12.fullmatch(hostname):
        return hostname, "$HOSTNAME"
    if in_container_marker and hostname and engine_hostname == hostname:
        # The engine runs inside this same container (Docker-in-Docker, a CI sandbox):
        # to that engine we are the host, and it sees our filesystem as we do.
        return None, f"the engine runs beside us (its name {hostname!r} is our hostname)"
    if in_container_marker:
        raise SelfDetectionError(
            "running in a container, but its id cannot be found (no Docker id in "
            "/proc/self/mountinfo or /proc/self/cgroup, $HOSTNAME not an id): set "
            f"{CONTAINER_ID_ENV} to this container's id or name"
        )
    return None, "not in a container (no /.dockerenv, /run/.containerenv or container id)"


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return None


def locate_self(engine: Engine, override: str | None) -> SelfContainer:
    """Our container and its mounts, or ON_HOST. Raises with the setting to fix it."""
    marker = Path("/.dockerenv").exists() or Path("/run/.containerenv").exists()
    container_id, how = detect_container_id(
        override=override,
        in_container_marker=marker,
        mountinfo=_read("/proc/self/mountinfo"),
        cgroup=_read("/proc/self/cgroup"),
        hostname=socket.gethostname(),
        engine_hostname=engine.facts().name if marker and not override else None,
    )
    if container_id is None:
        return SelfContainer(container_id=None, how=how) if how != ON_HOST.how else ON_HOST
    return engine.inspect_self(container_id, how)

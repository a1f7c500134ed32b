"""Where the scheduler runs: on the host, or in which container (verified by the engine)."""

from __future__ import annotations

import socket
from pathlib import Path

from orchestrator.engine import Engine
from orchestrator.hostpaths import ON_HOST, SelfContainer, detect_container_id


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

"""What a job may do to the host. Pure.

The Docker socket is root on the host: a job holding it (or running privileged, or in
the host's network or PID namespace) can take the whole machine. Such a job runs only
when it asks for it explicitly AND the service is configured to permit it.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.errors import OrchestratorError
from orchestrator.hostpaths import MountPlan
from orchestrator.spec import JobSpec

ALLOW_SETTING = "ORCHESTRATOR_ALLOW_PRIVILEGED_JOBS"
SOCKET_PATHS = ("/var/run/docker.sock", "/run/docker.sock")


class UnsafeJobError(OrchestratorError, PermissionError):
    exit_code = 2


def _is_socket(path: str) -> bool:
    return path in SOCKET_PATHS or path.endswith("/docker.sock")


def check_safety(spec: JobSpec, plans: Sequence[MountPlan], permitted: bool) -> None:
    for plan in plans:
        if plan.type == "bind" and (_is_socket(plan.source) or _is_socket(plan.target)):
            raise UnsafeJobError(
                f"job {spec.name!r} mounts the Docker socket ({plan.source}), which is root "
                "on the host: ask for it with `docker_socket: true` instead of a volume"
            )
    asked = spec.dangerous_requests
    if asked and not permitted:
        raise UnsafeJobError(
            f"job {spec.name!r} asks for {', '.join(asked)}, which gives it control of the "
            f"host; this service does not permit that (set {ALLOW_SETTING}=true to allow it)"
        )

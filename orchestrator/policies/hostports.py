"""Which host ports a job may pin. Pure.

A port below 1024 is where the host's own services listen (ssh, DNS, a web server): a
job pinning one could take it over the moment that service restarts, or answer in its
place where it is not running. So pinning one needs the service's grant,
`ORCHESTRATOR_ALLOW_LOW_PORTS=true`; it is checked at validate, apply and launch.
Leased ports come from the operator's pool and are not the job's choice.
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.errors import InvalidSpecError
from orchestrator.settings import ALLOW_LOW_PORTS_ENV
from orchestrator.spec import JobSpec, LoadedJob

FIRST_UNPRIVILEGED_PORT = 1024


def low_port_problem(spec: JobSpec, allowed: bool) -> str | None:
    """`job 'x': ports[i]: ...` for the first low port it pins without the grant."""
    if allowed:
        return None
    for index, port in enumerate(spec.ports):
        if port.host_port is not None and port.host_port < FIRST_UNPRIVILEGED_PORT:
            return (
                f"job {spec.name!r}: ports[{index}]: host port {port.host_port} is below "
                f"{FIRST_UNPRIVILEGED_PORT}, where the host's own services listen: pin one "
                f"from {FIRST_UNPRIVILEGED_PORT} up, or set {ALLOW_LOW_PORTS_ENV}=true"
            )
    return None


def check_pinned_ports(loaded: Iterable[LoadedJob], allowed: bool) -> None:
    """InvalidSpecError naming the file, job and field of the first low port pinned."""
    for job in loaded:
        problem = low_port_problem(job.spec, allowed)
        if problem is not None:
            raise InvalidSpecError(f"{job.source}: {problem}")

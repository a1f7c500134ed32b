"""The Docker runtime adapter."""

from orchestrator.engine.docker_engine import (
    JOB_LABEL,
    MANAGED_LABEL,
    RUN_LABEL,
    ContainerExit,
    ContainerSpec,
    DockerEngine,
)

__all__ = [
    "JOB_LABEL",
    "MANAGED_LABEL",
    "RUN_LABEL",
    "ContainerExit",
    "ContainerSpec",
    "DockerEngine",
]

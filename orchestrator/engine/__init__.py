"""The engine: its contract, in our own records, and the Docker adapter."""

from orchestrator.engine.contract import (
    JOB_LABEL,
    MANAGED_LABEL,
    RUN_LABEL,
    ContainerExit,
    ContainerSpec,
    Engine,
    EngineFacts,
    Handle,
    ManagedWorkload,
    WorkloadState,
)
from orchestrator.engine.docker_engine import DockerEngine

__all__ = [
    "JOB_LABEL",
    "MANAGED_LABEL",
    "RUN_LABEL",
    "ContainerExit",
    "ContainerSpec",
    "DockerEngine",
    "Engine",
    "EngineFacts",
    "Handle",
    "ManagedWorkload",
    "WorkloadState",
]

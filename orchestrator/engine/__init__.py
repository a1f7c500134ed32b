"""The engine: its contract, in our own records, and the Docker adapter."""

from typing import TYPE_CHECKING, Any

from orchestrator.engine.contract import (
    JOB_LABEL,
    LAUNCH_LABEL,
    MANAGED_LABEL,
    RUN_LABEL,
    ContainerExit,
    ContainerSpec,
    Engine,
    EngineFacts,
    ExecSpec,
    ExecTarget,
    Handle,
    ManagedWorkload,
    WorkloadState,
)

if TYPE_CHECKING:
    from orchestrator.engine.docker import DockerEngine


def __getattr__(name: str) -> Any:
    # The Docker adapter (and the docker SDK) loads only when asked for by name.
    if name == "DockerEngine":
        from orchestrator.engine.docker import DockerEngine

        return DockerEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "JOB_LABEL",
    "LAUNCH_LABEL",
    "MANAGED_LABEL",
    "RUN_LABEL",
    "ContainerExit",
    "ContainerSpec",
    "DockerEngine",
    "Engine",
    "EngineFacts",
    "ExecSpec",
    "ExecTarget",
    "Handle",
    "ManagedWorkload",
    "WorkloadState",
]

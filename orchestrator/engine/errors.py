"""Errors of the engine, kept here for old imports: they live in orchestrator.errors."""

from orchestrator.errors import (
    ContainerGoneError,
    EngineError,
    EngineUnavailableError,
    ImageUnavailableError,
    NetworkNotFoundError,
    PortAllocatedError,
)

__all__ = [
    "ContainerGoneError",
    "EngineError",
    "EngineUnavailableError",
    "ImageUnavailableError",
    "NetworkNotFoundError",
    "PortAllocatedError",
]

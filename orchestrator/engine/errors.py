"""Errors of the Docker adapter, in our hierarchy."""

from __future__ import annotations

from orchestrator.errors import OrchestratorError


class EngineError(OrchestratorError):
    """The engine refused or failed an operation."""


class EngineUnavailableError(EngineError, ConnectionError):
    """The engine cannot be reached."""


class ImageUnavailableError(EngineError, LookupError):
    """An image is not on the engine and cannot be pulled."""


class NetworkNotFoundError(EngineError, LookupError):
    """A job asks for a network that does not exist."""


class ContainerGoneError(EngineError, LookupError):
    """A container vanished (removed by someone else): normal, not a crash."""


class PortAllocatedError(EngineError):
    """The engine could not bind a host port we asked for."""

    def __init__(self, port: int, reason: str) -> None:
        super().__init__(reason)
        self.port = port

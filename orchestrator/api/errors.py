"""The HTTP edge's errors: the status of each of ours, and one error of the edge itself.

The API (app.py) and the dashboard (pages.py) both answer with these, so neither needs
the other's module for them.
"""

from __future__ import annotations

from orchestrator.errors import (
    ConflictError,
    DatabaseUnavailableError,
    DuplicateFireError,
    EngineUnavailableError,
    InvalidInputError,
    InvalidSpecError,
    NotFoundError,
    OrchestratorError,
    RefusedError,
    RunFinishedError,
    SchemaOutOfDateError,
    StopFailedError,
    UnsafeJobError,
)


class HttpError(Exception):
    """A request the edge itself refuses (no token, a form from elsewhere, a body too
    large), with its status. `page`: raised for a dashboard page, so answered in HTML (a
    401 with the sign-in page) where the API answers JSON."""

    def __init__(self, status: int, message: str, *, page: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.page = page


def status_of(error: OrchestratorError) -> int:
    """The HTTP status of one of our errors (the API and the pages answer alike)."""
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, UnsafeJobError):
        return 403
    if isinstance(error, InvalidSpecError):
        return 422
    if isinstance(error, InvalidInputError):
        return 400
    if isinstance(error, UnsafeJobError):  # a valid job this service does not permit
        return 403
    if isinstance(error, RefusedError | RunFinishedError | ConflictError | DuplicateFireError):
        return 409
    if isinstance(error, DatabaseUnavailableError | SchemaOutOfDateError | EngineUnavailableError):
        return 503
    if isinstance(error, StopFailedError):
        return 502  # the engine did not stop it: asked, not done
    return 500

"""One error hierarchy for the whole package.

Each error also subclasses the standard library exception with the same
meaning, so callers may catch either. The CLI turns these into one line on
stderr and an exit code; nothing else prints them.
"""

from __future__ import annotations

import reprlib


class OrchestratorError(Exception):
    """Base of every error the orchestrator raises on purpose."""

    exit_code = 1


class InvalidInputError(OrchestratorError, ValueError):
    """The user gave us something we cannot accept (exit code 2)."""

    exit_code = 2


class InvalidQuantityError(InvalidInputError):
    """A duration or a size does not parse."""


class InvalidScheduleError(InvalidInputError):
    """A cron line, `@every` interval or time zone is not valid."""


class InvalidSpecError(InvalidInputError):
    """A job definition is invalid. The message names the file, the job and the field."""


class NotFoundError(OrchestratorError, LookupError):
    """Base for lookups that found nothing."""


class JobNotFoundError(NotFoundError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no job named {quote(name)}")
        self.name = name


class RunNotFoundError(NotFoundError):
    def __init__(self, run_id: int) -> None:
        super().__init__(f"no run with id {run_id}")
        self.run_id = run_id


class DatabaseError(OrchestratorError):
    """The database failed in a way the caller cannot fix by changing input."""


class DatabaseUnavailableError(DatabaseError, ConnectionError):
    """The database cannot be reached or opened."""


class ConflictError(DatabaseError):
    """A concurrent writer got there first (a unique key); the same write, tried again,
    sees its result."""


class SchemaOutOfDateError(DatabaseError):
    """The database schema is not at the revision this code expects."""


class DuplicateFireError(OrchestratorError):
    """A run for this fire (job, scheduled_for, attempt) is already recorded."""


class RefusedError(OrchestratorError):
    """What was asked is refused by the state it would act on (a disabled job, a prune
    that would delete everything); the message says how to go ahead anyway."""


class RunFinishedError(OrchestratorError):
    """The run has already ended; it cannot be cancelled or started."""


class StopFailedError(OrchestratorError):
    """A run asked to cancel whose container could not be stopped (yet): it stays
    active, and the scheduler that owns it keeps stopping it."""


class TakenOverError(OrchestratorError):
    """Another scheduler adopted the run (this process looked dead to it: frozen, or cut
    off from the database past --adopt-after): this one must not start or record it."""


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


class HostPathError(OrchestratorError, ValueError):
    """A job's path cannot be shared with a sibling container; the message says what to mount."""

    exit_code = 2


class UnsafeJobError(OrchestratorError, PermissionError):
    """A job asks for what the policy refuses; the message names the job, what and the rule."""

    exit_code = 2


class PortPoolExhaustedError(OrchestratorError):
    """Every port of the pool is leased or published."""


class PinnedPortTakenError(OrchestratorError):
    """A job's pinned host port is leased by another run or published by another container."""


class SecretUnavailableError(OrchestratorError, LookupError):
    """A secret or env file a job needs cannot be read; the run fails, naming the file."""


class SelfDetectionError(OrchestratorError, RuntimeError):
    """We run in a container but cannot tell which one."""


QUOTE_LIMIT = 80
_SHORT = reprlib.Repr()
_SHORT.maxstring = 60
_SHORT.maxother = 60
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 4
_SHORT.maxlevel = 2


def quote(value: object) -> str:
    """A value as a message may show it: its repr, cut short. The work is bounded too, so
    a value that expands to gigabytes (a YAML alias bomb) costs nothing to name."""
    text = _SHORT.repr(value)
    return text if len(text) <= QUOTE_LIMIT else text[: QUOTE_LIMIT - 3] + "..."

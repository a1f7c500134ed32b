"""Records the store hands out: plain frozen values, never ORM rows. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # (only types here: the CLI starts faster without the parser)
    from orchestrator.schedule import Schedule
    from orchestrator.spec import JobSpec


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    LOST = "lost"
    SKIPPED = "skipped"

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.PENDING, RunStatus.RUNNING)


FINISHED_STATUSES = tuple(status for status in RunStatus if status.finished)
# The largest id a run (or any other row: an audit entry, a notification) can have: the
# databases' signed 64-bit integer. Ids from a user are checked against it.
MAX_RUN_ID = 2**63 - 1


class RunTrigger(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    RETRY = "retry"
    CATCHUP = "catchup"
    CHAIN = "chain"  # started by another run's end (on_success / on_failure)


@dataclass(frozen=True)
class JobRecord:
    spec: JobSpec
    enabled: bool
    revision: int
    source: str | None
    created_at: datetime
    updated_at: datetime
    last_status: RunStatus | None = None
    paused_at: datetime | None = None  # `orchestrator pause`: not fired until resumed
    paused_by: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def schedule(self) -> str:
        return self.spec.schedule

    @property
    def timezone(self) -> str:
        return self.spec.timezone

    @property
    def image(self) -> str:
        return self.spec.image

    @property
    def parsed_schedule(self) -> Schedule:
        return self.spec.parsed_schedule


@dataclass(frozen=True)
class JobListing:
    """A job as a listing shows it: read from its stored definition without validating
    it again (a list of 1,000 jobs need not parse 1,000 definitions)."""

    name: str
    enabled: bool
    schedule: str
    timezone: str
    image: str
    revision: int
    source: str | None
    created_at: datetime
    updated_at: datetime
    last_status: RunStatus | None = None
    paused_at: datetime | None = None
    paused_by: str | None = None

    @classmethod
    def from_stored(
        cls,
        name: str,
        enabled: bool,
        definition: dict[str, Any],
        revision: int,
        source: str | None,
        created_at: datetime,
        updated_at: datetime,
        last_status: str | None,
        paused_at: datetime | None = None,
        paused_by: str | None = None,
    ) -> JobListing:
        """From a stored job's columns and its latest run's status (both readers of the
        listing build it here: the store's and orchestrator.store.sqlite_listing)."""
        return cls(
            name=name,
            enabled=enabled,
            schedule=definition["schedule"],
            timezone=definition.get("timezone", "UTC"),
            image=definition.get("image", ""),  # an exec job has none
            revision=revision,
            source=source,
            created_at=created_at,
            updated_at=updated_at,
            last_status=RunStatus(last_status) if last_status else None,
            paused_at=paused_at,
            paused_by=paused_by,
        )

    @property
    def parsed_schedule(self) -> Schedule:
        from orchestrator.schedule import parse_schedule  # cached: parsed once a process

        return parse_schedule(self.schedule, self.timezone)


@dataclass(frozen=True)
class ApplyResult:
    """What `jobs apply` changed, by job name."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunRecord:
    id: int
    job: str
    trigger: RunTrigger
    attempt: int
    status: RunStatus
    scheduled_for: datetime
    created_at: datetime
    first_run_id: int | None = None
    parent_run_id: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    container_id: str | None = None
    image: str | None = None
    image_digest: str | None = None
    ports: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    output: str | None = None  # only filled when asked for one run
    output_truncated: bool = False
    output_limit: int | None = None
    owner: str | None = None
    heartbeat_at: datetime | None = None
    due_at: datetime | None = None
    # Asked to cancel while its container ran: it stays active until that has stopped.
    cancel_requested_at: datetime | None = None


@dataclass(frozen=True)
class RunDot:
    """A run as a strip of recent runs shows it: which, how it ended, when it was due."""

    id: int
    status: RunStatus
    scheduled_for: datetime


@dataclass(frozen=True)
class NewRun:
    """A run to record. (job, scheduled_for, attempt) is unique: one fire, one run."""

    job: str
    scheduled_for: datetime
    trigger: RunTrigger
    status: RunStatus = RunStatus.PENDING
    attempt: int = 1
    first_run_id: int | None = None
    parent_run_id: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    container_id: str | None = None
    image: str | None = None
    error: str | None = None
    output: str | None = None
    output_truncated: bool = False
    owner: str | None = None
    due_at: datetime | None = None


@dataclass(frozen=True)
class PortLease:
    host_ip: str
    port: int
    protocol: str
    container_port: int
    run_id: int | None
    job: str | None
    leased_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class AuditEntry:
    """One write through the CLI or the API: who (a token's name, `cli:<user>`), what
    (`jobs.apply`), on what (a job's name, a run's id), and how it ended (`ok` or the
    error's message)."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    result: str


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up: still not delivered when its time ran out


@dataclass(frozen=True)
class NewNotification:
    """An event of a run to tell one receiver; `payload` is the run as it was then, so
    the notification outlives the run's row (retention)."""

    run_id: int
    job: str
    event: str
    url: str  # as the job file gives it: {{secret:NAME}} is resolved at delivery only
    payload: dict[str, object]
    secret_name: str | None = None
    method: str = "POST"  # GET: a dead-man ping (no body)


@dataclass(frozen=True)
class Notification:
    id: int
    run_id: int
    job: str
    event: str
    url: str
    secret_name: str | None
    payload: dict[str, object]
    status: DeliveryStatus
    attempts: int
    answers: list[dict[str, object]]
    created_at: datetime
    next_attempt_at: datetime
    give_up_at: datetime
    delivered_at: datetime | None = None
    method: str = "POST"

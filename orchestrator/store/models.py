"""SQLAlchemy 2.x tables. Rows never leave the store package: repositories return records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from orchestrator.policies.columns import SOURCE_LENGTH, URL_LENGTH
from orchestrator.records import RunStatus, RunTrigger
from orchestrator.store.types import UTCDateTime

# Stable constraint names, so migrations name things the same on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _one_of(column: str, values: type[RunStatus] | type[RunTrigger]) -> str:
    return f"{column} IN ({', '.join(repr(member.value) for member in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    # The validated definition in canonical form (JobSpec.to_dict()).
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean)
    # Bumped on every change (definition or enabled), so a service can notice changes.
    revision: Mapped[int] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(String(SOURCE_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # `orchestrator pause`: state of the database, not of the job's file (apply keeps it).
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    paused_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The last `run_on_start` fire claimed (service/startup.py).
    start_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (
        # One fire of one job is exactly one run; retries are further attempts of it.
        UniqueConstraint("job_name", "scheduled_for", "attempt"),
        # The history's hot queries read these in order, newest first (migration 0011).
        Index(None, "job_name", "scheduled_for", "id"),
        Index(None, "status", "scheduled_for", "id"),
        Index(None, "finished_at"),  # the dashboard's timeline
        Index(None, "scheduled_for"),
        # One chained run per target and parent (two parents ending at once do not collide).
        Index(None, "job_name", "parent_run_id", unique=True),
        # Retention asks "is any run's parent this one?" for every run it would delete.
        Index(None, "parent_run_id"),
        CheckConstraint(_one_of("status", RunStatus), name="status"),
        CheckConstraint(_one_of("trigger", RunTrigger), name="trigger"),
        CheckConstraint("attempt >= 1", name="attempt"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # A name, not a foreign key: history outlives the job it belonged to.
    job_name: Mapped[str] = mapped_column(String(63))
    trigger: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer)
    first_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), index=True
    )
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime)
    # The run whose end started this one (trigger 'chain').
    parent_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    container_id: Mapped[str | None] = mapped_column(String(128))
    image: Mapped[str | None] = mapped_column(String(512))
    image_digest: Mapped[str | None] = mapped_column(String(256))
    ports: Mapped[dict[str, int] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    # A bounded tail of stdout+stderr; the cap in force is recorded beside it.
    output: Mapped[str | None] = mapped_column(Text)
    output_truncated: Mapped[bool] = mapped_column(Boolean)
    output_limit: Mapped[int | None] = mapped_column(Integer)
    # Which scheduler process owns the run, and when it last said so.
    owner: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A pending run waits for this time (a retry's backoff); NULL means at once.
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A cancel was asked for while its container ran: it ends cancelled once that stops.
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PortLeaseRow(Base):
    __tablename__ = "port_leases"
    __table_args__ = (UniqueConstraint("host_ip", "port", "protocol"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_ip: Mapped[str] = mapped_column(String(45))
    port: Mapped[int] = mapped_column(Integer)
    protocol: Mapped[str] = mapped_column(String(3))
    container_port: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), index=True
    )
    job_name: Mapped[str | None] = mapped_column(String(63))
    leased_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditRow(Base):
    """Every write made through the CLI or the HTTP API: who, what, when, and how it went."""

    __tablename__ = "audit"
    __table_args__ = (Index(None, "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(255))
    result: Mapped[str] = mapped_column(Text)


class NotificationRow(Base):
    """The outbox: each event of a run for each receiver, written in the transaction
    that records the run's change, delivered (at least once) by a scheduler's workers."""

    __tablename__ = "notifications"
    __table_args__ = (
        # One event of one run is told once to one receiver: a repeated write is ignored.
        UniqueConstraint("run_id", "event", "url"),
        Index(None, "status", "next_attempt_at"),
        Index(None, "job_name", "id"),
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No foreign key: runs are pruned, their notifications keep the snapshot in payload.
    run_id: Mapped[int] = mapped_column(Integer, index=True)
    job_name: Mapped[str] = mapped_column(String(63))
    event: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(String(URL_LENGTH))
    # POST (a webhook: the run's JSON) or GET (a dead-man ping).
    method: Mapped[str] = mapped_column(String(8))
    secret_name: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    answers: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    give_up_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Which scheduler is delivering it, until when (another takes it over after).
    owner: Mapped[str | None] = mapped_column(String(255))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MaintenanceLeaseRow(Base):
    """Who does a service-wide chore (pruning the history) until when: one scheduler at
    a time, another takes over once the lease has run out."""

    __tablename__ = "maintenance_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    until: Mapped[datetime] = mapped_column(UTCDateTime)

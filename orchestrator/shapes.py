"""The JSON shapes of jobs, runs, leases and audit entries: one definition for the CLI's
`--json` and the HTTP API, so both give the same answer. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestrator.records import (
    ApplyResult,
    AuditEntry,
    JobListing,
    JobRecord,
    Notification,
    PortLease,
    RunRecord,
    RunStatus,
)

NEXT_RUNS_SHOWN = 5


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with offset, as the JSON shapes promise."""
    return value.isoformat() if value is not None else None


def next_run(record: JobRecord | JobListing, now: datetime) -> datetime | None:
    """When the job fires next; None while it is disabled or paused."""
    if not record.enabled or record.paused_at is not None:
        return None
    return record.parsed_schedule.next_after(now)


def job_state(record: JobRecord | JobListing, now: datetime) -> str:
    """What `jobs list` shows in place of a next run: paused, disabled, manual (never
    fired by the timetable), done (a one-shot whose instant has passed), or scheduled."""
    if record.paused_at is not None:
        return "paused"
    if not record.enabled:
        return "disabled"
    if record.schedule == "@manual":
        return "manual"
    if record.schedule.startswith("@at ") and record.parsed_schedule.next_after(now) is None:
        return "done" if record.last_status is not None else "missed"
    return "scheduled"


def job_summary(record: JobRecord | JobListing, now: datetime) -> dict[str, Any]:
    """A job in a list (`jobs list --json`, `GET /api/jobs`)."""
    return {
        "name": record.name,
        "enabled": record.enabled,
        "schedule": record.schedule,
        "timezone": record.timezone,
        "image": record.image,
        "next_run_at": iso(next_run(record, now)),
        "state": job_state(record, now),
        "paused_at": iso(record.paused_at),
        "paused_by": record.paused_by,
        "last_status": record.last_status.value if record.last_status else None,
        "revision": record.revision,
        "source": record.source,
    }


def job_detail(record: JobRecord, now: datetime) -> dict[str, Any]:
    """One job (`jobs show --json`, `GET /api/jobs/{name}`): `next_runs` are the
    schedule's next fire times, also while the job is disabled."""
    from orchestrator.schedule import next_fire_times
    from orchestrator.spec import masked_definition

    return {
        **job_summary(record, now),
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
        "definition": masked_definition(record.spec),
        "next_runs": [
            iso(moment)
            for moment in next_fire_times(record.spec.parsed_schedule, now, NEXT_RUNS_SHOWN)
        ],
    }


def apply_result(result: ApplyResult, dry_run: bool) -> dict[str, Any]:
    return {
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "deleted": result.deleted,
        "dry_run": dry_run,
    }


def run_summary(run: RunRecord) -> dict[str, Any]:
    """A run in a list (`runs list --json`, `GET /api/runs`)."""
    return {
        "id": run.id,
        "job": run.job,
        "status": run.status.value,
        "trigger": run.trigger.value,
        "attempt": run.attempt,
        "first_run_id": run.first_run_id,
        "parent_run_id": run.parent_run_id,
        "scheduled_for": iso(run.scheduled_for),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "exit_code": run.exit_code,
        "container_id": run.container_id,
        "image": run.image,
        "image_digest": run.image_digest,
        "ports": run.ports,
        "error": run.error,
        # Why a run was skipped (concurrency: forbid, a missed start deadline); else None.
        "skip_reason": run.error if run.status is RunStatus.SKIPPED else None,
        # When a cancel was asked for a run whose container has not stopped yet (it is
        # still `running`, or `pending`), or that ended cancelled after its stop.
        "cancel_requested_at": iso(run.cancel_requested_at),
    }


def run_detail(run: RunRecord) -> dict[str, Any]:
    """One run with its output's tail (`runs show --json`, `GET /api/runs/{id}`)."""
    return {
        **run_summary(run),
        "created_at": iso(run.created_at),
        "output": run.output or "",
        "output_truncated": run.output_truncated,
        "output_limit": run.output_limit,
    }


def lease(lease: PortLease) -> dict[str, Any]:
    return {
        "host_ip": lease.host_ip,
        "port": lease.port,
        "protocol": lease.protocol,
        "container_port": lease.container_port,
        "run": lease.run_id,
        "job": lease.job,
    }


def audit_entry(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": iso(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "result": entry.result,
    }


def notification(item: Notification) -> dict[str, Any]:
    """A notification in the outbox (`notifications list --json`)."""
    return {
        "id": item.id,
        "run": item.run_id,
        "job": item.job,
        "event": item.event,
        "url": item.url,
        "status": item.status.value,
        "attempts": item.attempts,
        "last_answer": item.answers[-1] if item.answers else None,
        "created_at": iso(item.created_at),
        "next_attempt_at": iso(item.next_attempt_at) if item.status.value == "pending" else None,
        "delivered_at": iso(item.delivered_at),
    }

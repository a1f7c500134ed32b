"""How late a run starts, and whether it may still start: pure."""

from __future__ import annotations

from datetime import datetime

from orchestrator.records import RunRecord, RunTrigger
from orchestrator.spec import JobSpec
from orchestrator.units import format_duration

# A run that starts later than this after its time is logged, and counted as late.
LATE_SECONDS = 2.0


def due_time(run: RunRecord) -> datetime:
    """When the run was meant to start: a retry's due time, else its fire's time."""
    return run.due_at or run.scheduled_for


def missed_start_deadline(run: RunRecord, spec: JobSpec, now: datetime) -> str | None:
    """The skip reason of a scheduled fire that can no longer start within the job's
    start_deadline; None when it may start. Manual runs, retries and catch-up fires
    (which have catchup.deadline) are not held to it."""
    deadline = spec.start_deadline
    if deadline is None or run.trigger is not RunTrigger.SCHEDULE:
        return None
    late = now - run.scheduled_for
    if late <= deadline:
        return None
    over = late - deadline
    by = format_duration(over) if over.total_seconds() >= 1 else f"{over.total_seconds():.1f}s"
    return f"missed its start deadline by {by} (start_deadline: {format_duration(deadline)})"

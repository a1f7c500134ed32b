"""Whether and when a run is tried again (`retries:`). Pure."""

from __future__ import annotations

from datetime import datetime

from orchestrator.records import NewRun, RunRecord, RunStatus, RunTrigger
from orchestrator.spec import JobSpec

RETRIED_STATUSES = (RunStatus.FAILED, RunStatus.TIMED_OUT)


def plan_retry(finished: RunRecord, spec: JobSpec, now: datetime) -> NewRun | None:
    """The next attempt of a failed or timed-out run, due after the backoff; None when
    it ended otherwise (cancelled, skipped, lost), was a manual run, or has used up its
    retries. Every attempt is its own run: same fire, attempt + 1, linked to the first."""
    if finished.status not in RETRIED_STATUSES:
        return None
    if finished.trigger is RunTrigger.MANUAL or finished.attempt > spec.retries.count:
        return None
    return NewRun(
        job=spec.name,
        scheduled_for=finished.scheduled_for,
        trigger=RunTrigger.RETRY,
        attempt=finished.attempt + 1,
        first_run_id=finished.first_run_id or finished.id,
        image=spec.image,
        due_at=(finished.finished_at or now) + spec.retries.backoff,
    )

"""The timetable: every enabled job and its next fire, kept by APScheduler 3 (our own
triggers, no misfire grace, no coalescing), in step with the jobs in the database."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler

from orchestrator.policies.catchup import plan_catchup
from orchestrator.records import JobRecord
from orchestrator.service.apscheduler_glue import INLINE_PREFIX, FireExecutor, ScheduleTrigger
from orchestrator.spec import JobSpec
from orchestrator.store.facade import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scheduled:
    revision: int
    spec: JobSpec
    updated_at: datetime


class Timetable:
    def __init__(self, on_fire: Callable[[str, datetime], None]) -> None:
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": FireExecutor(on_fire)},
            job_defaults={"misfire_grace_time": None, "coalesce": False, "max_instances": 1},
        )
        self._jobs: dict[str, Scheduled] = {}
        self._signature: tuple[object, ...] | None = None

    def __len__(self) -> int:
        return len(self._jobs)

    def spec(self, name: str) -> JobSpec | None:
        """The job's definition while it is enabled here, else None."""
        scheduled = self._jobs.get(name)
        return scheduled.spec if scheduled is not None else None

    def specs(self) -> list[JobSpec]:
        """The definitions of the jobs enabled (and not paused) here."""
        return [scheduled.spec for scheduled in self._jobs.values()]

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        # wait=False: APScheduler 3 can deadlock joining its own thread from a listener.
        with contextlib.suppress(SchedulerNotRunningError):
            self._scheduler.shutdown(wait=False)

    def every(self, seconds: float, name: str, action: Callable[[], None]) -> None:
        """Run `action` in APScheduler's own thread every `seconds`, from now."""
        self._scheduler.add_job(
            action,
            "interval",
            seconds=seconds,
            id=f"{INLINE_PREFIX}{name}",
            next_run_time=datetime.now(UTC),
        )

    def sync(self, store: Store, now: datetime) -> None:
        """Bring the timetable in line with the enabled jobs in the database (one cheap
        query when nothing changed)."""
        signature = store.jobs_signature()
        if signature == self._signature:
            return
        wanted = {record.name: record for record in store.enabled_jobs()}
        for name in list(self._jobs):
            if name not in wanted:
                self._unschedule(name)
        for name, record in wanted.items():
            current = self._jobs.get(name)
            if current is None or current.revision != record.revision:
                self._schedule(record, now)
        self._signature = signature

    def missed_fires(
        self, last_fires: dict[str, datetime], now: datetime
    ) -> list[tuple[str, datetime]]:
        """Fires missed while no scheduler ran, as each job's catch-up policy says: from
        its last fire in the history, never from before it was (re-)enabled or changed."""
        missed = []
        for name, scheduled in list(self._jobs.items()):
            spec = scheduled.spec
            last = last_fires.get(name)
            if last is None and spec.at is None:
                continue  # a job with no history has missed nothing
            # A one-shot that never fired has missed its instant if that was after it was
            # applied; its catch-up policy says whether it still runs (once: its key).
            since = max(last or scheduled.updated_at, scheduled.updated_at)
            missed += [
                (name, at) for at in plan_catchup(spec.parsed_schedule, spec.catchup, since, now)
            ]
        return missed

    def _schedule(self, record: JobRecord, now: datetime) -> None:
        spec = record.spec
        first = spec.parsed_schedule.next_after(now)
        if self._jobs.pop(spec.name, None) is not None:
            self._remove(spec.name)
        self._jobs[spec.name] = Scheduled(record.revision, spec, record.updated_at)
        if first is None:
            return
        self._scheduler.add_job(
            _never_called,
            trigger=ScheduleTrigger(spec.parsed_schedule),
            id=spec.name,
            name=spec.name,
            next_run_time=first,
            replace_existing=True,
        )
        log.info(
            "scheduled %s (%s, %s), next at %s",
            spec.name,
            spec.schedule,
            spec.timezone,
            first.isoformat(),
            extra={"job": spec.name},
        )

    def _unschedule(self, name: str) -> None:
        self._jobs.pop(name, None)
        self._remove(name)
        log.info("unscheduled %s", name, extra={"job": name})

    def _remove(self, name: str) -> None:
        with contextlib.suppress(JobLookupError):  # not scheduled (no more fires)
            self._scheduler.remove_job(name)


def _never_called() -> None:  # pragma: no cover - FireExecutor hands fires over instead
    raise AssertionError("fires are handed to the service, not run by APScheduler")

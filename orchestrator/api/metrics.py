"""Prometheus metrics of the service (`GET /metrics`).

Counters and histograms are fed by the service as runs end (an observer); gauges that
describe the database and the engine are read at scrape time, at most every few
seconds. The job label is `job_name`: a label called `job` collides with the one
Prometheus gives every target. Histograms carry no job label unless asked (10,000 jobs
times a dozen buckets is a lot of series).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator import __version__, shapes
from orchestrator.errors import OrchestratorError
from orchestrator.operations import Backends
from orchestrator.policies.lateness import LATE_SECONDS
from orchestrator.records import JobListing, RunRecord, RunTrigger
from orchestrator.schedule import next_fire_times

DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, float("inf"))
LATENESS_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, float("inf"))
# Gauges read from the database and the engine are cached this long between scrapes.
STATE_CACHE_SECONDS = 5.0


class ServiceMetrics:
    """The metrics registry of one service, and its observer."""

    def __init__(
        self,
        backends: Backends,
        runs_in_flight: Callable[[], int],
        *,
        per_job_histograms: bool = False,
        launches: Callable[[], Mapping[str, Any]] = dict,
    ) -> None:
        # `_created` series double the count and tell nothing a scrape's restart does not.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        self._per_job = per_job_histograms
        labels = ["job_name"] if per_job_histograms else []
        self.runs = Counter(
            "orchestrator_runs",
            "Runs ended by this scheduler, by job and final status.",
            ["job_name", "status"],
            registry=self.registry,
        )
        self.fires = Counter(
            "orchestrator_fires",
            "Fires this scheduler claimed; of them, those skipped (concurrency: forbid) and "
            "those claimed late (more than 2s after their time).",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in ("claimed", "skipped", "late"):
            self.fires.labels(outcome)
        self.duration = Histogram(
            "orchestrator_run_duration_seconds",
            "How long runs ran, from start to end.",
            labels,
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.lateness = Histogram(
            "orchestrator_run_start_lateness_seconds",
            "How long after its scheduled time a scheduled run started.",
            labels,
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StateCollector(backends, runs_in_flight, launches))

    # --- the service's observer ------------------------------------------------------------

    def fire_claimed(self, run: RunRecord, late_seconds: float) -> None:
        self.fires.labels("claimed").inc()
        if late_seconds > LATE_SECONDS:
            self.fires.labels("late").inc()

    def fire_skipped(self, run: RunRecord) -> None:
        self.fires.labels("skipped").inc()
        self.runs.labels(run.job, "skipped").inc()

    def run_finished(self, run: RunRecord) -> None:
        self.runs.labels(run.job, run.status.value).inc()
        duration = self.duration.labels(run.job) if self._per_job else self.duration
        lateness = self.lateness.labels(run.job) if self._per_job else self.lateness
        if run.started_at is not None and run.finished_at is not None:
            seconds = (run.finished_at - run.started_at).total_seconds()
            duration.observe(max(seconds, 0.0))
        if run.started_at is not None and run.trigger in (RunTrigger.SCHEDULE, RunTrigger.CATCHUP):
            late = (run.started_at - run.scheduled_for).total_seconds()
            lateness.observe(max(late, 0.0))


class _StateCollector(Collector):
    """Gauges read at scrape time: reachability, leases, each job's last success and next
    fire, runs in flight, build info."""

    def __init__(
        self,
        backends: Backends,
        runs_in_flight: Callable[[], int],
        launches: Callable[[], Mapping[str, Any]],
    ) -> None:
        self._backends = backends
        self._runs_in_flight = runs_in_flight
        self._launches = launches
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None

    def describe(self) -> list[Metric]:
        return []  # families vary with the jobs; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        in_flight = GaugeMetricFamily(
            "orchestrator_runs_in_flight",
            "Runs this scheduler holds now: queued to launch, starting or followed.",
        )
        in_flight.add_metric([], self._runs_in_flight())
        yield in_flight
        yield from _launch_gauges(self._launches())
        build = GaugeMetricFamily(
            "orchestrator_build_info", "The orchestrator's version.", labels=["version"]
        )
        build.add_metric([__version__], 1)
        yield build
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > STATE_CACHE_SECONDS:
                self._cached = (time.monotonic(), list(self._read()))
            yield from self._cached[1]

    def _read(self) -> Iterator[Metric]:
        engine_up = GaugeMetricFamily(
            "orchestrator_engine_up", "1 when the container engine answers."
        )
        try:
            self._backends.engine().facts()
            engine_up.add_metric([], 1)
        except OrchestratorError:
            engine_up.add_metric([], 0)
        yield engine_up
        database_up = GaugeMetricFamily("orchestrator_database_up", "1 when the database answers.")
        store = self._backends.store
        try:
            jobs = store.job_listing()
            successes = store.last_successes()
            leases = store.leases()
            pending, oldest = store.notification_backlog()
        except OrchestratorError:
            database_up.add_metric([], 0)
            yield database_up
            return
        database_up.add_metric([], 1)
        yield database_up
        yield from _job_gauges(jobs, successes)
        pool = self._backends.launch_settings().port_pool
        in_use = GaugeMetricFamily(
            "orchestrator_port_leases", "Host ports leased to runs now (all schedulers)."
        )
        in_use.add_metric([], len(leases))
        yield in_use
        size = GaugeMetricFamily("orchestrator_port_pool_size", "Host ports in the pool.")
        size.add_metric([], pool.size)
        yield size
        outbox = GaugeMetricFamily(
            "orchestrator_notifications_pending", "Notifications not delivered yet."
        )
        outbox.add_metric([], pending)
        yield outbox
        age = GaugeMetricFamily(
            "orchestrator_notifications_oldest_pending_seconds",
            "How long the oldest notification not delivered yet has waited (0: none).",
        )
        waited = (datetime.now().astimezone() - oldest).total_seconds() if oldest else 0.0
        age.add_metric([], waited)
        yield age


def _launch_gauges(pool: Mapping[str, Any]) -> Iterator[Metric]:
    """The launch pool, live (not cached): what saturation looks like."""
    if not pool:
        return
    gauges = (
        ("orchestrator_launch_slots", "Container launches this scheduler runs at once.", "slots"),
        ("orchestrator_launches_in_flight", "Launches in flight now.", "launching"),
        ("orchestrator_launch_backlog", "Runs due that wait for a launch slot.", "backlog"),
        (
            "orchestrator_launch_oldest_wait_seconds",
            "How long after its time the oldest run waiting for a launch was due (0: none).",
            "oldest_wait_seconds",
        ),
    )
    for name, documentation, key in gauges:
        gauge = GaugeMetricFamily(name, documentation)
        gauge.add_metric([], float(pool[key]))
        yield gauge
    saturated = GaugeMetricFamily(
        "orchestrator_launch_saturated",
        "1 while runs wait and every launch (or running) slot is taken.",
    )
    saturated.add_metric([], 1 if pool.get("saturated_since") else 0)
    yield saturated


def _job_gauges(jobs: list[JobListing], successes: dict[str, datetime]) -> Iterator[Metric]:
    now = datetime.now().astimezone()
    enabled = GaugeMetricFamily(
        "orchestrator_job_enabled",
        "1 for an enabled job, 0 for a disabled one.",
        labels=["job_name"],
    )
    last = GaugeMetricFamily(
        "orchestrator_job_last_success_timestamp_seconds",
        "When the job's latest successful run ended (Unix time).",
        labels=["job_name"],
    )
    following = GaugeMetricFamily(
        "orchestrator_job_next_fire_timestamp_seconds",
        "When the enabled job fires next (Unix time).",
        labels=["job_name"],
    )
    paused = GaugeMetricFamily(
        "orchestrator_job_paused", "1 for a paused job (orchestrator pause).", labels=["job_name"]
    )
    period = GaugeMetricFamily(
        "orchestrator_job_period_seconds",
        "Seconds between the job's next two fires (for 'not succeeded within 2x its period').",
        labels=["job_name"],
    )
    for job in jobs:
        enabled.add_metric([job.name], 1 if job.enabled else 0)
        paused.add_metric([job.name], 1 if job.paused_at is not None else 0)
        if job.name in successes:
            last.add_metric([job.name], successes[job.name].timestamp())
        upcoming = shapes.next_run(job, now)
        if upcoming is not None:
            following.add_metric([job.name], upcoming.timestamp())
        fires = next_fire_times(job.parsed_schedule, now, 2)
        if len(fires) == 2:
            period.add_metric([job.name], (fires[1] - fires[0]).total_seconds())
    yield enabled
    yield paused
    total = GaugeMetricFamily("orchestrator_jobs_paused", "Jobs paused (orchestrator pause).")
    total.add_metric([], sum(job.paused_at is not None for job in jobs))
    yield total
    yield last
    yield following
    yield period

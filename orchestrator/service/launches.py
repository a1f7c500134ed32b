"""The launch pool: backpressure instead of a stall.

Runs due to start wait in a queue ordered by due time. A fixed number of workers
(`ORCHESTRATOR_MAX_PARALLEL_LAUNCHES`) take the earliest, hold it to its start deadline,
and launch it; each run that started is then followed by one thread of its own, and at
most `max_running` are followed at once (the workers wait for a slot). So the service's
threads are bounded whatever the load: fires beyond what the engine can take wait, in
order, as pending runs (owned and beaten for, so no other scheduler takes them), and
their lateness is logged once, when they start.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from orchestrator.errors import TakenOverError
from orchestrator.policies.lateness import LATE_SECONDS, due_time, missed_start_deadline
from orchestrator.records import RunRecord
from orchestrator.runner import Launched, NotStarted, RunLauncher
from orchestrator.service.health import LoopBeats
from orchestrator.settings import DEFAULT_MAX_RUNNING, IDLE_BEAT_SECONDS
from orchestrator.spec import JobSpec

log = logging.getLogger(__name__)
# Saturation is told once it lasted this long, then again at most this often.
SATURATION_TELL_AFTER_SECONDS = 5.0
SATURATION_TELL_EVERY_SECONDS = 30.0
# Told when a run ends, with its record (None when it ended by an error of ours).
RunEnded = Callable[[RunRecord, JobSpec, RunRecord | None], None]


@dataclass(order=True)
class _Waiting:
    due: datetime
    order: int
    run: RunRecord = field(compare=False)
    spec: JobSpec = field(compare=False)


@dataclass(frozen=True)
class PoolStats:
    """What the pool is doing now (for the health file, doctor and /metrics)."""

    slots: int
    launching: int
    backlog: int
    running: int
    max_running: int
    oldest_wait_seconds: float
    saturated_since: datetime | None

    @property
    def saturated(self) -> bool:
        return self.saturated_since is not None

    def to_dict(self) -> dict[str, object]:
        return {
            "slots": self.slots,
            "launching": self.launching,
            "backlog": self.backlog,
            "running": self.running,
            "max_running": self.max_running,
            "oldest_wait_seconds": round(self.oldest_wait_seconds, 1),
            "saturated_since": self.saturated_since.isoformat() if self.saturated_since else None,
        }


@dataclass(eq=False, kw_only=True)
class LaunchPool:
    launcher: RunLauncher
    clock: Callable[[], datetime]
    beats: LoopBeats
    ended: RunEnded
    workers: int
    max_running: int = DEFAULT_MAX_RUNNING

    def __post_init__(self) -> None:
        self._waiting: list[_Waiting] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._launching = 0
        self._running = 0
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._saturated_since: datetime | None = None
        self._told_at: datetime | None = None

    # --- what the service calls ---------------------------------------------------------

    def submit(self, run: RunRecord, spec: JobSpec) -> None:
        """Queue a pending run of ours to be launched in its turn."""
        self.launcher.heartbeats.hold(run.id)
        with self._changed:
            heapq.heappush(self._waiting, _Waiting(due_time(run), next(self._order), run, spec))
            self._changed.notify()

    def follow(self, run: RunRecord, spec: JobSpec, body: Callable[[], RunRecord]) -> None:
        """Follow a run that needs no launch (adopted, its container already there)."""
        with self._changed:
            self._running += 1
        self._thread(run, spec, body)

    def start(self) -> None:
        for index in range(self.workers):
            worker = threading.Thread(
                target=self._work, args=(index,), name=f"launch-{index}", daemon=True
            )
            worker.start()
            self._threads.append(worker)

    def stop(self, wait_seconds: float) -> None:
        """Launch nothing more (queued runs stay pending, ours, to be taken up by our next
        life or another scheduler); wait up to `wait_seconds` for launches in flight."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        for worker in self._threads:
            worker.join(wait_seconds / max(len(self._threads), 1))

    def running(self) -> int:
        """Runs being launched or followed now (not those waiting in the queue)."""
        with self._changed:
            return self._running

    def stats(self) -> PoolStats:
        now = self.clock()
        with self._changed:
            oldest = min((item.due for item in self._waiting), default=None)
            return PoolStats(
                slots=self.workers,
                launching=self._launching,
                backlog=len(self._waiting),
                running=self._running,
                max_running=self.max_running,
                oldest_wait_seconds=max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
                saturated_since=self._saturated_since,
            )

    def tell_saturation(self) -> None:
        """Log when the pool is saturated (runs wait while every launch slot, or every
        running slot, is taken) and when it keeps up again; called by the maintenance loop."""
        stats = self.stats()
        now = self.clock()
        busy = stats.launching >= stats.slots or stats.running >= stats.max_running
        if stats.backlog and busy:
            if self._saturated_since is None:
                self._saturated_since = now
            lasted = (now - self._saturated_since).total_seconds()
            quiet = self._told_at is None or (
                (now - self._told_at).total_seconds() >= SATURATION_TELL_EVERY_SECONDS
            )
            if lasted >= SATURATION_TELL_AFTER_SECONDS and quiet:
                self._told_at = now
                log.warning(
                    "launch pool saturated for %.0fs: %d of %d launches in flight, %d of %d "
                    "runs followed, %d run(s) waiting, the oldest %.1fs after its time",
                    lasted,
                    stats.launching,
                    stats.slots,
                    stats.running,
                    stats.max_running,
                    stats.backlog,
                    stats.oldest_wait_seconds,
                    extra={"backlog": stats.backlog, "saturated_seconds": round(lasted, 1)},
                )
        elif not stats.backlog and self._saturated_since is not None:
            if self._told_at is not None:
                lasted = (now - self._saturated_since).total_seconds()
                log.info("launch pool keeps up again after %.0fs of saturation", lasted)
            self._saturated_since = self._told_at = None

    # --- inside -------------------------------------------------------------------------

    def _work(self, index: int) -> None:
        beat = f"launches-{index}"
        while True:
            self.beats.beat(beat)
            with self._changed:
                if self._stopping:
                    return
                if not self._waiting or self._running >= self.max_running:
                    self._changed.wait(IDLE_BEAT_SECONDS)
                    continue
                item = heapq.heappop(self._waiting)
                self._launching += 1
                self._running += 1  # its slot, held from now on
            try:
                self._launch(item.run, item.spec)
            finally:
                with self._changed:
                    self._launching -= 1

    def _launch(self, run: RunRecord, spec: JobSpec) -> None:
        now = self.clock()
        launched: Launched | NotStarted | None = None
        try:
            reason = missed_start_deadline(run, spec, now)
            if reason is not None:
                log.warning(
                    "run %s of %s %s",
                    run.id,
                    spec.name,
                    reason,
                    extra={"run": run.id, "job": spec.name},
                )
                launched = NotStarted(self.launcher.skip(run, spec, reason))
                return
            late = (now - due_time(run)).total_seconds()
            if late > LATE_SECONDS:
                log.warning(
                    "run %s of %s starts %.1fs late",
                    run.id,
                    spec.name,
                    late,
                    extra={"run": run.id, "job": spec.name, "late_seconds": round(late, 3)},
                )
            launched = self.launcher.launch(run, spec)
        except TakenOverError:
            pass  # adopted meanwhile: the adopter's to end (the launcher logged it)
        except Exception:
            log.exception("run %s of %s could not be launched", run.id, spec.name)
        finally:
            if isinstance(launched, Launched):
                started = launched
                self._thread(run, spec, lambda: self.launcher.follow(started))
            else:
                self._end(run, spec, launched.run if launched is not None else None)

    def _thread(self, run: RunRecord, spec: JobSpec, body: Callable[[], RunRecord]) -> None:
        def follow() -> None:
            finished: RunRecord | None = None
            try:
                finished = body()
            except Exception:
                log.exception("run %s of %s failed inside the scheduler", run.id, spec.name)
            finally:
                self._end(run, spec, finished)

        threading.Thread(target=follow, name=f"run-{run.id}", daemon=True).start()

    def _end(self, run: RunRecord, spec: JobSpec, finished: RunRecord | None) -> None:
        with self._changed:
            self._running -= 1
            self._changed.notify()
        try:
            self.ended(run, spec, finished)
        except Exception:
            log.exception("run %s of %s: its end could not be handled", run.id, spec.name)

"""Use cases on runs: list, show, cancel, prune, and watch one as it goes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from orchestrator.errors import JobNotFoundError
from orchestrator.masking import OutputMasker
from orchestrator.operations.context import Audited
from orchestrator.records import Notification, RunDot, RunRecord, RunStatus
from orchestrator.store.facade import Store
from orchestrator.units import format_duration

if TYPE_CHECKING:
    from orchestrator.engine.contract import Engine
    from orchestrator.policies.retention import RetentionDefaults
    from orchestrator.service.retention import PruneResult

# How often a watcher looks at a run that has not started or not finished yet.
POLL_SECONDS = 0.5
# After its container ends, the run's own end is recorded within this (its output first).
END_RECORDED_WITHIN_SECONDS = 30
# What a live watcher keeps of what it gave, to go on from the history when the engine
# breaks the stream off; past it the watcher ends with the recorded tail instead.
COMPARED_BYTES = 2 * 1024 * 1024


def cancel_run(
    store: Store,
    engine: Callable[[], Engine],
    run_id: int,
    grace: int,
    clock: Callable[[], datetime],
) -> RunRecord:
    """Ask the run to cancel, stop its container (SIGTERM, SIGKILL after `grace`), and
    record it cancelled once the engine says it has stopped; the engine is needed only
    when it has one. RunFinishedError when it has already ended; StopFailedError when
    the stop failed (the run stays active; its scheduler keeps stopping it). (The
    service's `replace` does the same, the stop in a thread of its own.)"""
    from orchestrator.runner.cancelling import stop_cancelled

    run = store.request_cancel(run_id, clock())
    if run.status.finished:
        return run  # it had no container: cancelled at once
    return stop_cancelled(store, engine, run, grace, clock)


@dataclass(frozen=True)
class Waiting:
    """The run is pending: no scheduler has started it yet."""

    run: RunRecord


@dataclass(frozen=True)
class Withheld:
    """It runs, but its live output cannot be masked here (its secrets are not readable,
    or its job is gone): only the masked tail is given, when it ends."""

    run: RunRecord


@dataclass(frozen=True)
class Output:
    """Live output, masked."""

    data: bytes


@dataclass(frozen=True)
class Ended:
    """The last event. `run` is finished unless the watch did not follow; `streamed` says
    whether its output came live (else `run.output` holds its recorded tail)."""

    run: RunRecord
    streamed: bool


RunEvent = Waiting | Withheld | Output | Ended


class RunOperations:
    def __init__(self, audited: Audited) -> None:
        self._audited = audited
        self._backends = audited.backends
        self._store = audited.backends.store

    def recent_by_job(self, since: datetime, per_job: int = 10) -> dict[str, list[RunDot]]:
        return self._store.recent_runs_by_job(since, per_job)

    def in_window(self, start: datetime, limit: int = 5000) -> list[RunRecord]:
        """Runs that overlap [start, now), newest first (the timeline)."""
        return self._store.runs_in_window(start, limit)

    def attempts(self, run: RunRecord) -> list[RunRecord]:
        """Every attempt of the run's fire, first to last."""
        return self._store.attempts(run.first_run_id or run.id)

    def deliveries(self, run_id: int) -> list[Notification]:
        """The notifications of one run (webhooks and pings), oldest first."""
        return list(reversed(self._store.notifications(run_id=run_id, limit=1000)))

    def list(
        self,
        *,
        job: str | None = None,
        status: RunStatus | None = None,
        since: datetime | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[RunRecord]:
        """Newest first; the next page is `before=<the last one's id>`."""
        return self._store.runs(job=job, status=status, since=since, before=before, limit=limit)

    def get(self, run_id: int) -> RunRecord:
        """With its output's tail; RunNotFoundError when there is none."""
        return self._store.run(run_id)

    def cancel(self, run_id: int, grace: int) -> RunRecord:
        with self._audited.audit("runs.cancel", str(run_id)):
            return cancel_run(
                self._store, self._backends.engine, run_id, grace, self._backends.clock
            )

    def prune(self, older_than: datetime, *, dry_run: bool = False) -> int:
        """Delete finished runs scheduled before `older_than`; the newest of each job stays."""
        if dry_run:
            return self._store.prune_runs(older_than, dry_run=True)
        with self._audited.audit("runs.prune", f"before {older_than.isoformat()}") as summary:
            count = self._store.prune_runs(older_than)
            summary.append(f"{count} deleted")
        return count

    def apply_retention(
        self, defaults: RetentionDefaults, *, older_than: timedelta | None = None, dry_run: bool
    ) -> PruneResult:
        """The service's retention pass, now (each job's `history:` over the defaults),
        or, with `older_than`, every job's finished runs scheduled longer ago than that.
        The same runs are always kept; LeaseHeldError while a scheduler is pruning."""
        from orchestrator.policies.retention import Retention
        from orchestrator.runner.identity import make_owner_id
        from orchestrator.service.retention import HistoryPruner

        pruner = HistoryPruner(self._store, defaults, make_owner_id(), clock=self._backends.clock)
        rules = pruner.rules()
        if older_than is not None:
            rules = {job: Retention(max_age=older_than) for job in rules}
        if dry_run:
            return pruner.plan(rules)
        what = f"older than {format_duration(older_than)}" if older_than else "history rules"
        with self._audited.audit("runs.prune", what) as summary:
            result = pruner.prune(rules)
            summary.append(f"{result.total_runs} run(s), {result.audit} audit entr(ies) deleted")
        return result

    def watch(self, run_id: int, *, follow: bool) -> Iterator[RunEvent]:
        """A run's output as it goes. Following, it waits for a pending run to start, gives
        the live output and ends with the run's end; else it gives what there is now."""
        run = self._store.run(run_id)
        if follow and run.status is RunStatus.PENDING:
            yield Waiting(run)
            while run.status is RunStatus.PENDING:
                time.sleep(POLL_SECONDS)
                run = self._store.run(run_id)
        if run.status is not RunStatus.RUNNING or not run.container_id:
            yield Ended(self._wait_for_end(run) if follow else run, streamed=False)
            return
        masker = self._live_masker(run.job)
        if masker is None:
            yield Withheld(run)
            yield Ended(self._wait_for_end(run) if follow else run, streamed=False)
            return
        from orchestrator.engine.errors import ContainerGoneError, EngineError

        engine = self._backends.engine()
        sent = bytearray()
        try:
            chunks = (
                engine.follow_output(run.container_id)
                if follow
                else engine.output(run.container_id)
            )
            for chunk in chunks:
                if masked := masker.feed(chunk):
                    if len(sent) <= COMPARED_BYTES:  # a long run's output is not all kept
                        sent += masked
                    yield Output(masked)
            if rest := masker.flush():
                yield Output(rest)
        except ContainerGoneError:
            # It ended while we looked: its output is in the history by now, or soon.
            yield from _ended_midway(self._wait_for_end(run, limit=10), bytes(sent))
            return
        except EngineError:
            # A container being removed answers 409, not 404, and a stream it ends can
            # break off after its last entry: if the run has ended, its end (and output)
            # is in the history; otherwise the engine's error stands.
            ended = self._store.run(run.id)
            if not ended.status.finished:
                raise
            yield from _ended_midway(ended, bytes(sent))
            return
        if follow:
            run = self._wait_for_end(run, limit=END_RECORDED_WITHIN_SECONDS)
        yield Ended(run, streamed=True)

    def _wait_for_end(self, run: RunRecord, limit: float | None = None) -> RunRecord:
        """The run once its end is recorded; as it is after `limit` seconds, if given."""
        deadline = None if limit is None else time.monotonic() + limit
        while not run.status.finished:
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(POLL_SECONDS)
            run = self._store.run(run.id)
        return run

    def _live_masker(self, job: str) -> OutputMasker | None:
        """What masks the job's secrets in output read straight from its container; None
        when they cannot be known here (the job is gone, or its secrets are unreadable)."""
        from orchestrator.runner.secretfiles import SecretUnavailableError, load_launch_secrets

        try:
            spec = self._store.job(job).spec
            return OutputMasker(load_launch_secrets(spec, self._backends.secrets_dir).masked)
        except (JobNotFoundError, SecretUnavailableError):
            return None


def _ended_midway(run: RunRecord, sent: bytes) -> Iterator[RunEvent]:
    """The end of a live stream the engine broke off: the rest of the output from the
    history, when the history holds all of it and it goes on from what was sent (then the
    viewer has had it all, live); else the end alone, to show the recorded tail."""
    recorded = run.output
    shown = sent.decode("utf-8", errors="backslashreplace")
    if (
        not run.status.finished
        or recorded is None
        or run.output_truncated
        or len(sent) > COMPARED_BYTES
        or not recorded.startswith(shown)
    ):
        yield Ended(run, streamed=False)
        return
    if rest := recorded[len(shown) :]:
        yield Output(rest.encode("utf-8"))
    yield Ended(run, streamed=True)

"""Applying the retention rules: each job's history (and the audit log) pruned in small
transactions with short pauses between them, by one scheduler at a time (a lease in
the database), so that a prune never holds a lock long enough to delay a fire."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from orchestrator.clock import Clock, utc_now
from orchestrator.errors import OrchestratorError, RefusedError
from orchestrator.policies.retention import (
    PRUNE_BATCH,
    PRUNE_PAUSE_SECONDS,
    Retention,
    RetentionDefaults,
    rule_for,
)
from orchestrator.store.facade import Store

log = logging.getLogger(__name__)

LEASE = "retention"
# A pass renews its lease every fifth of this; a scheduler that dies mid-pass is followed
# by another once this has run out.
LEASE_SECONDS = 300.0


@dataclass
class PruneResult:
    """What a pass deleted (or, dry, would delete): runs per job, and audit entries."""

    runs: dict[str, int] = field(default_factory=dict)
    audit: int = 0

    @property
    def total_runs(self) -> int:
        return sum(self.runs.values())


class LeaseHeldError(RefusedError):
    """Another scheduler (or `runs prune`) is pruning now."""


class HistoryPruner:
    def __init__(
        self,
        store: Store,
        defaults: RetentionDefaults,
        owner: str,
        *,
        clock: Clock = utc_now,
        batch: int = PRUNE_BATCH,
        pause_seconds: float = PRUNE_PAUSE_SECONDS,
        stopping: threading.Event | None = None,
    ) -> None:
        self.store = store
        self.defaults = defaults
        self.owner = owner
        self.clock = clock
        self.batch = batch
        self.pause_seconds = pause_seconds
        self.stopping = stopping or threading.Event()
        self._renew_at = 0.0

    def rules(self) -> dict[str, Retention]:
        """Each job with history: its job's rule, or the defaults for a deleted job's runs."""
        specs = {job.name: job.spec for job in self.store.jobs()}
        return {
            name: rule_for(specs[name].history if name in specs else None, self.defaults)
            for name in self.store.history_job_names()
        }

    def plan(self, rules: Mapping[str, Retention] | None = None) -> PruneResult:
        """What a pass would delete now (chain parents freed by it are counted next time)."""
        now = self.clock()
        result = PruneResult()
        for job, rule in sorted((rules if rules is not None else self.rules()).items()):
            if rule.prunes:
                result.runs[job] = self.store.count_prunable(job, rule.keep, rule.cutoff(now))
        if self.defaults.audit_max_age is not None:
            result.audit = self.store.count_prunable_audit(now - self.defaults.audit_max_age)
        return result

    def prune(self, rules: Mapping[str, Retention] | None = None) -> PruneResult:
        """One pass, under the lease: LeaseHeldError while another holds it."""
        self._claim()
        try:
            return self._pass(rules if rules is not None else self.rules())
        finally:
            self.store.release_maintenance(LEASE, self.owner)

    def _claim(self) -> None:
        self._renew_at = time.monotonic() + LEASE_SECONDS / 5
        now = self.clock()
        until = now + timedelta(seconds=LEASE_SECONDS)
        if not self.store.claim_maintenance(LEASE, self.owner, now, until):
            raise LeaseHeldError("another scheduler is pruning the history now; try again later")

    def _pass(self, rules: Mapping[str, Retention]) -> PruneResult:
        result = PruneResult()
        for job, rule in sorted(rules.items()):
            if not rule.prunes or self.stopping.is_set():
                continue
            if time.monotonic() > self._renew_at:
                self._claim()
            deleted = self._drain(self._job_batch(job, rule))
            if deleted:
                result.runs[job] = deleted
        if self.defaults.audit_max_age is not None:
            audit_cutoff = self.clock() - self.defaults.audit_max_age
            result.audit = self._drain(
                lambda: self.store.prune_audit_batch(audit_cutoff, self.batch)
            )
        return result

    def _job_batch(self, job: str, rule: Retention) -> Callable[[], int]:
        cutoff = rule.cutoff(self.clock())
        return lambda: self.store.prune_batch(job, rule.keep, cutoff, self.batch)

    def _drain(self, batch: Callable[[], int]) -> int:
        """Batches until one deletes nothing (or we stop), pausing between them so that
        the fires and run ends waiting for the database go first."""
        total = 0
        while not self.stopping.is_set():
            deleted = batch()
            total += deleted
            if deleted < self.batch:
                break
            self.stopping.wait(self.pause_seconds)
        return total


class RetentionTask:
    """The service's thread: a pass every `every_seconds` when any rule prunes."""

    def __init__(self, pruner: HistoryPruner, every_seconds: float) -> None:
        self.pruner = pruner
        self.every_seconds = every_seconds
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        stopping = self.pruner.stopping
        while not stopping.wait(self.every_seconds):
            try:
                rules = self.pruner.rules()
                if not any(rule.prunes for rule in rules.values()) and (
                    self.pruner.defaults.audit_max_age is None
                ):
                    continue
                result = self.pruner.prune(rules)
            except LeaseHeldError:
                continue
            except OrchestratorError as error:
                log.warning("retention: %s (will retry)", error)
                continue
            except Exception:
                log.exception("retention failed (will retry)")
                continue
            if result.total_runs or result.audit:
                log.info(
                    "retention: deleted %d run(s) of %d job(s), %d audit entr(ies)",
                    result.total_runs,
                    len(result.runs),
                    result.audit,
                )

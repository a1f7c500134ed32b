"""How much run history to keep: a job's `history:` over the service-wide defaults. Pure.

Nothing is pruned unless a job or the operator asks for it: with neither `history:` nor
ORCHESTRATOR_HISTORY_KEEP / ORCHESTRATOR_HISTORY_MAX_AGE set, every run is kept, as
before. Whatever the rule, the store keeps unfinished runs, each job's newest run, the
last scheduled fire (what catch-up reads), and chain parents whose children stay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from orchestrator.errors import InvalidInputError, quote
from orchestrator.settings import AUDIT_MAX_AGE_ENV, HISTORY_KEEP_ENV, HISTORY_MAX_AGE_ENV
from orchestrator.spec import HistorySpec
from orchestrator.spec.history_keys import HISTORY_KEEP_MAX
from orchestrator.units import parse_duration

# Rows deleted per transaction, and the pause between two: a fire's claim waits for one
# batch at most (benchmarks/retention.py measures it).
PRUNE_BATCH = 500
PRUNE_PAUSE_SECONDS = 0.02


@dataclass(frozen=True)
class Retention:
    """One job's rule; None for both: keep everything."""

    keep: int | None = None
    max_age: timedelta | None = None

    @property
    def prunes(self) -> bool:
        return self.keep is not None or self.max_age is not None

    def cutoff(self, now: datetime) -> datetime | None:
        return now - self.max_age if self.max_age is not None else None


@dataclass(frozen=True)
class RetentionDefaults:
    """The service-wide rules (for jobs without `history:`, and for runs of deleted jobs)."""

    history: Retention = field(default_factory=Retention)
    audit_max_age: timedelta | None = None


def rule_for(history: HistorySpec | None, defaults: RetentionDefaults) -> Retention:
    """A job's own keys win, each on its own; what it leaves out comes from the defaults."""
    if history is None:
        return defaults.history
    return Retention(
        keep=history.keep if history.keep is not None else defaults.history.keep,
        max_age=history.max_age if history.max_age is not None else defaults.history.max_age,
    )


def parse_defaults(keep: str | None, max_age: str | None, audit: str | None) -> RetentionDefaults:
    """The three settings as given (None or empty: keep everything)."""
    return RetentionDefaults(
        history=Retention(
            keep=_keep(keep) if keep and keep.strip() else None,
            max_age=_age(max_age, HISTORY_MAX_AGE_ENV) if max_age and max_age.strip() else None,
        ),
        audit_max_age=_age(audit, AUDIT_MAX_AGE_ENV) if audit and audit.strip() else None,
    )


def _keep(text: str) -> int:
    value = text.strip()
    if not value.isdigit() or not 1 <= int(value) <= HISTORY_KEEP_MAX:
        raise InvalidInputError(
            f"{HISTORY_KEEP_ENV}: {quote(text)} is not a number of runs "
            f"between 1 and {HISTORY_KEEP_MAX}"
        )
    return int(value)


def _age(text: str, env: str) -> timedelta:
    try:
        return parse_duration(text)
    except InvalidInputError as error:
        raise InvalidInputError(f"{env}: {error}") from None

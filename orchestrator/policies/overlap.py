"""What a new run does about runs of its job still going (`concurrency:`). Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.records import RunRecord
from orchestrator.spec import Concurrency


@dataclass(frozen=True)
class OverlapDecision:
    """Start the new run or not; which runs to cancel first; why it is skipped."""

    start: bool
    cancel: tuple[int, ...] = ()
    skip_reason: str | None = None


def decide_overlap(
    concurrency: Concurrency, job: str, new_run: int, unfinished: Sequence[RunRecord]
) -> OverlapDecision:
    """`allow` starts; `forbid` skips while another run goes (naming it, so a hung job
    shows in the history); `replace` cancels the others and starts."""
    others = [run.id for run in unfinished if run.id != new_run]
    if concurrency is Concurrency.ALLOW or not others:
        return OverlapDecision(start=True)
    if concurrency is Concurrency.FORBID:
        ids = ", ".join(str(other) for other in others)
        return OverlapDecision(
            start=False,
            skip_reason=f"skipped: run {ids} of {job} still running (concurrency: forbid)",
        )
    return OverlapDecision(start=True, cancel=tuple(others))

"""How a run ended, from what its container did. Pure."""

from __future__ import annotations

from datetime import timedelta

from orchestrator.records import RunStatus
from orchestrator.units import format_duration, format_size


def classify_exit(
    exit_code: int | None,
    *,
    timed_out: bool,
    oom_killed: bool = False,
    timeout: timedelta | None = None,
    memory_limit: int | None = None,
) -> tuple[RunStatus, str | None]:
    """(status, reason): timed out (killed at its timeout) wins; exit 0 succeeded; any
    other exit failed, saying when the kernel killed it for memory."""
    if timed_out:
        allowed = format_duration(timeout) if timeout else "its timeout"
        return RunStatus.TIMED_OUT, f"timed out after {allowed}: killed"
    if exit_code == 0:
        return RunStatus.SUCCEEDED, None
    reason = f"exit status {exit_code}"
    if oom_killed:
        reason += " (killed: out of memory" + (
            f", limit {format_size(memory_limit)})" if memory_limit else ")"
        )
    return RunStatus.FAILED, reason

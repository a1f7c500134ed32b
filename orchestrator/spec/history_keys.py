"""The `history:` job key (how much run history the service keeps). Pure."""

from __future__ import annotations

from orchestrator.spec.model import HistorySpec
from orchestrator.spec.values import _duration, _integer, _known_keys, _mapping, _Problem

# A job keeps at least its newest run, whatever it says; more than this is "keep all".
HISTORY_KEEP_MAX = 10_000_000


def parse_history(value: object) -> HistorySpec:
    data = _mapping(value, "history")
    _known_keys(data, ("keep", "max_age"), "history")
    if data.get("keep") is None and data.get("max_age") is None:
        raise _Problem("history", "needs keep (a number of runs) or max_age (like 90d), or both")
    keep = data.get("keep")
    max_age = data.get("max_age")
    return HistorySpec(
        keep=_integer(keep, "history.keep", 1, HISTORY_KEEP_MAX) if keep is not None else None,
        max_age=_duration(max_age, "history.max_age") if max_age is not None else None,
    )

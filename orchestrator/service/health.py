"""Health of the service's loops: each records when it last made progress; the service
is healthy only while every one of them is recent. Pure, but for the thread-safe stamps
and the file.

- `fires`: APScheduler's own thread (it writes the health file at each tick);
- `claims`: the workers that claim fires (each beats at every pass, idle or not; the
  oldest counts, so one wedged worker shows);
- `maintenance`: the loop that starts queued runs, syncs jobs and adopts orphans.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

LOOPS = ("fires", "claims", "maintenance")


class LoopBeats:
    """When each loop (or each worker of one, `claims-0`) last made progress."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._beats: dict[str, datetime] = {}

    def beat(self, name: str, now: datetime | None = None) -> None:
        with self._lock:
            self._beats[name] = now or datetime.now(UTC)

    def loops(self) -> dict[str, datetime]:
        """Each loop's last progress; a loop of several workers counts its oldest."""
        with self._lock:
            beats = dict(self._beats)
        found: dict[str, datetime] = {}
        for name, moment in beats.items():
            loop = name.split("-", 1)[0]
            found[loop] = min(moment, found.get(loop, moment))
        return found


def stale_loops(
    loops: Mapping[str, datetime], now: datetime, max_age_seconds: float
) -> list[tuple[str, float]]:
    """(loop, seconds since its progress) for every loop older than the limit, or missing."""
    stale = []
    for loop in LOOPS:
        moment = loops.get(loop)
        age = (now - moment).total_seconds() if moment is not None else float("inf")
        if age > max_age_seconds:
            stale.append((loop, age))
    return stale


def describe(stale: list[tuple[str, float]]) -> str:
    return "; ".join(
        f"the {loop} loop has never run"
        if age == float("inf")
        else f"the {loop} loop last made progress {age:.0f}s ago"
        for loop, age in stale
    )


def check(beats: LoopBeats, max_age_seconds: float) -> tuple[bool, str, dict[str, float]]:
    """(healthy, why not, each loop's seconds since progress): what /healthz answers."""
    now = datetime.now(UTC)
    loops = beats.loops()
    stale = stale_loops(loops, now, max_age_seconds)
    ages = {name: round((now - at).total_seconds(), 1) for name, at in loops.items()}
    return not stale, describe(stale), ages


def write_health_file(
    path: Path,
    *,
    owner: str,
    jobs: int,
    active_runs: int,
    beats: LoopBeats,
    launches: Mapping[str, object] | None = None,
) -> None:
    """What `orchestrator health` and `doctor` read, written whole (a rename), never half."""
    data = {
        "owner": owner,
        "time": datetime.now(UTC).isoformat(),
        "jobs": jobs,
        "active_runs": active_runs,
        "loops": {loop: moment.isoformat() for loop, moment in beats.loops().items()},
        "launches": dict(launches or {}),
    }
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(json.dumps(data))
        temporary.replace(path)
    except OSError as error:
        log.warning("cannot write the health file %s: %s", path, error)

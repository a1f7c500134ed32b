"""What the scheduler sees of its world: the engine, where it runs, the database, the
port pool. Each check is reported on its own, failed or not."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.errors import EngineError, OrchestratorError
from orchestrator.operations.context import Backends

# A health file older than this belongs to a service that is not running (any more).
HEALTH_FILE_FRESH_SECONDS = 60.0


def _check(report: dict[str, Any], name: str, probe: Callable[[], dict[str, Any]]) -> None:
    try:
        report[name] = {"ok": True, **probe()}
    except OrchestratorError as error:
        report[name] = {"ok": False, "error": str(error)}


def doctor_report(backends: Backends, health_file: Path | None = None) -> dict[str, Any]:
    """{"ok": all passed, "engine": {...}, "location": {...}, "database": {...},
    "port_pool": {...}}; a check that depends on a failed one is left out. The store is
    opened in its own check, so that failing to open it is a finding too."""
    report: dict[str, Any] = {}

    def engine() -> dict[str, Any]:
        facts = backends.engine().facts()
        return {"version": facts.version, "api_version": facts.api_version, "name": facts.name}

    def where() -> dict[str, Any]:
        found = backends.where()
        return {
            "in_container": found.in_container,
            "container_id": found.container_id,
            "found_by": found.how,
            "mounts": [
                {
                    "type": m.type,
                    "destination": m.destination,
                    "source": m.source,
                    "read_only": m.read_only,
                }
                for m in found.mounts
            ],
        }

    def database() -> dict[str, Any]:
        revision = backends.store.revision()
        backends.store.check_schema()
        return {"url": backends.store.display_url, "revision": revision}

    _check(report, "engine", engine)
    if report["engine"]["ok"]:
        _check(report, "backend", lambda: backend_report(backends))
        _check(report, "location", where)
    _check(report, "database", database)
    if report["database"]["ok"]:
        _check(report, "notifications", lambda: outbox_report(backends))
        _check(report, "launches", lambda: launch_report(backends, health_file))
    if report["engine"]["ok"] and report["database"]["ok"]:
        _check(report, "port_pool", lambda: pool_report(backends))
    return {"ok": all(section["ok"] for section in report.values()), **report}


def backend_report(backends: Backends) -> dict[str, Any]:
    """Which backend runs the jobs; on Swarm, the nodes, and that we are on a manager."""
    swarm_facts = getattr(backends.engine(), "swarm_facts", None)
    if swarm_facts is None:
        return {"backend": "docker"}
    facts: dict[str, Any] = swarm_facts()
    if not facts["manager"]:
        raise EngineError(
            f"the swarm backend needs a swarm manager, and this engine is not one (swarm "
            f"state: {facts['state'] or 'none'}): run the scheduler on a manager node"
        )
    return {"backend": "swarm", "nodes": facts["nodes"]}


def pool_report(backends: Backends) -> dict[str, Any]:
    """The port pool: its size, what we lease, what other containers publish in it."""
    settings = backends.launch_settings()
    leases = backends.store.leases()
    in_pool = {lease.port for lease in leases if lease.port in settings.port_pool}
    published = {
        port for _, port, _ in backends.engine().published_ports() if port in settings.port_pool
    }
    return {
        "range": str(settings.port_pool),
        "host_ip": settings.port_host_ip,
        "size": settings.port_pool.size,
        "leased": len(in_pool),
        "published_by_others": len(published - in_pool),
        "free": settings.port_pool.size - len(in_pool | published),
    }


def launch_report(backends: Backends, health_file: Path | None) -> dict[str, Any]:
    """Runs waiting to start (in the database, every scheduler's), and, when the service
    on this host wrote its health file lately, its launch pool: whether it is saturated."""
    now = backends.clock()
    waiting, earliest = backends.store.runs_waiting(now)
    report: dict[str, Any] = {
        "waiting": waiting,
        "oldest_waiting_s": round((now - earliest).total_seconds(), 1) if earliest else 0.0,
        "service": None,
        "saturated": None,
    }
    pool = _service_launches(health_file, now)
    if pool is not None:
        report["service"] = pool
        report["saturated"] = pool.get("saturated_since") is not None
    return report


def _service_launches(health_file: Path | None, now: datetime) -> dict[str, Any] | None:
    """The launch pool the service wrote into its health file, if it did so lately."""
    if health_file is None:
        return None
    try:
        data = json.loads(health_file.read_text())
        written = datetime.fromisoformat(data["time"])
        launches = data["launches"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(launches, dict) or not launches:
        return None
    if (now - written).total_seconds() > HEALTH_FILE_FRESH_SECONDS:
        return None
    return launches


def outbox_report(backends: Backends) -> dict[str, Any]:
    """The notifications not delivered yet, and how long the oldest has waited."""
    pending, oldest = backends.store.notification_backlog()
    waited = (backends.clock() - oldest).total_seconds() if oldest is not None else 0.0
    return {"pending": pending, "oldest_pending_s": round(waited, 1)}

"""`orchestrator doctor`: what the scheduler sees of its world."""

from __future__ import annotations

from typing import Any

import click

from orchestrator.cli.context import AppContext, pass_app
from orchestrator.cli.formatting import emit_json, json_option
from orchestrator.errors import OrchestratorError


def _check(report: dict[str, Any], name: str, probe: Any) -> Any:
    try:
        value = probe()
    except OrchestratorError as error:
        report[name] = {"ok": False, "error": str(error)}
        return None
    report[name] = {"ok": True, **value}
    return value


@click.command()
@json_option
@pass_app
def doctor(app: AppContext, as_json: bool) -> None:
    """Check the engine, where we run (host or container), our mounts, the port pool and the
    database. Exits 1 if any check fails.

    Example: orchestrator doctor --json
    """
    report: dict[str, Any] = {}

    def engine() -> dict[str, Any]:
        facts = app.engine().facts()
        return {"version": facts.version, "api_version": facts.api_version, "name": facts.name}

    def where() -> dict[str, Any]:
        found = app.where()
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
        db = app.database(check_schema=False)
        revision = db.current_revision()
        db.check_schema()
        return {"url": db.display_url, "revision": revision}

    def pool() -> dict[str, Any]:
        from orchestrator.store.leases import PortLeaseRepository

        settings = app.launch_settings()
        with app.database().session() as session:
            leases = PortLeaseRepository(session).list()
        in_pool = {lease.port for lease in leases if lease.port in settings.port_pool}
        published = {
            port for _, port, _ in app.engine().published_ports() if port in settings.port_pool
        }
        return {
            "range": str(settings.port_pool),
            "host_ip": settings.port_host_ip,
            "size": settings.port_pool.size,
            "leased": len(in_pool),
            "published_by_others": len(published - in_pool),
            "free": settings.port_pool.size - len(in_pool | published),
        }

    _check(report, "engine", engine)
    if report["engine"]["ok"]:
        _check(report, "location", where)
    _check(report, "database", database)
    if report["engine"]["ok"] and report["database"]["ok"]:
        _check(report, "port_pool", pool)
    healthy = all(section["ok"] for section in report.values())
    if as_json:
        emit_json({"ok": healthy, **report})
    else:
        _print(report)
    if not healthy:
        raise SystemExit(1)


def _print(report: dict[str, Any]) -> None:
    for name, section in report.items():
        if not section["ok"]:
            click.echo(f"{name}: FAILED: {section['error']}")
            continue
        if name == "engine":
            click.echo(f"engine: ok, Docker {section['version']} (API {section['api_version']})")
        elif name == "location":
            if section["in_container"]:
                click.echo(
                    f"location: in container {section['container_id'][:12]} "
                    f"(found by {section['found_by']})"
                )
                for mount in section["mounts"]:
                    mode = "ro" if mount["read_only"] else "rw"
                    click.echo(
                        f"  {mount['type']:6} {mount['destination']} <- "
                        f"{mount['source'] or '-'} ({mode})"
                    )
            else:
                click.echo(f"location: on the host ({section['found_by']}): paths pass as they are")
        elif name == "database":
            click.echo(f"database: ok, {section['url']} at revision {section['revision']}")
        elif name == "port_pool":
            click.echo(
                f"port pool: {section['range']} on {section['host_ip']}: "
                f"{section['free']} free of {section['size']} "
                f"({section['leased']} leased, {section['published_by_others']} "
                "published by other containers)"
            )

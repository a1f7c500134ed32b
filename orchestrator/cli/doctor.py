"""`orchestrator doctor`: what the scheduler sees of its world."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from orchestrator.cli.context import AppContext, pass_app
from orchestrator.cli.formatting import emit_json
from orchestrator.cli.options import health_file_option, json_option


@click.command()
@json_option
@health_file_option
@pass_app
def doctor(app: AppContext, as_json: bool, health_file: Path) -> None:
    """Check the engine, where we run (host or container), our mounts, the port pool and the
    database; tell the runs waiting to start and (from the service's health file, when it
    runs here) whether its launch pool is saturated. Exits 1 if any check fails.

    Example: orchestrator doctor --json
    """
    from orchestrator.operations import Backends
    from orchestrator.operations.doctor import doctor_report
    from orchestrator.store.facade import Store

    # Not app.operations(): a database whose schema is behind is one of the findings.
    backends = Backends(
        open_store=lambda: Store(app.database(check_schema=False)),
        engine=app.engine,
        where=app.where,
        launch_settings=app.launch_settings,
        launcher=app.launcher,
        secrets_dir=app.secrets_dir,
    )
    report = doctor_report(backends, health_file)
    if as_json:
        emit_json(report)
    else:
        _print({name: section for name, section in report.items() if name != "ok"})
    if not report["ok"]:
        raise SystemExit(1)


def _print(report: dict[str, Any]) -> None:
    for name, section in report.items():
        if not section["ok"]:
            click.echo(f"{name}: FAILED: {section['error']}")
            continue
        if name == "engine":
            click.echo(f"engine: ok, Docker {section['version']} (API {section['api_version']})")
        elif name == "backend":
            click.echo(f"backend: ok, {section['backend']}")
            for node in section.get("nodes", []):
                click.echo(
                    f"  node {node['name']} ({node['role']}): {node['state']}, "
                    f"availability {node['availability']}"
                )
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
        elif name == "notifications":
            click.echo(
                f"notifications: {section['pending']} pending"
                + (
                    f", the oldest for {section['oldest_pending_s']:.0f}s"
                    if section["pending"]
                    else ""
                )
            )
        elif name == "launches":
            click.echo(_launches_line(section))
        elif name == "port_pool":
            click.echo(
                f"port pool: {section['range']} on {section['host_ip']}: "
                f"{section['free']} free of {section['size']} "
                f"({section['leased']} leased, {section['published_by_others']} "
                "published by other containers)"
            )


def _launches_line(section: dict[str, Any]) -> str:
    line = f"launches: {section['waiting']} run(s) waiting to start"
    if section["waiting"]:
        line += f", the oldest {section['oldest_waiting_s']:.0f}s after its time"
    pool = section["service"]
    if pool is None:
        return line + " (no service's health file here to tell its launch pool)"
    line += (
        f"; the service here: {pool['launching']} of {pool['slots']} launches in flight, "
        f"{pool['backlog']} queued, {pool['running']} of {pool['max_running']} runs followed"
    )
    if section["saturated"]:
        line += f": SATURATED since {pool['saturated_since']}"
    return line

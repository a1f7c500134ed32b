"""`orchestrator doctor`: what the scheduler sees of its world."""

from __future__ import annotations

from typing import Any

import click

from orchestrator.cli.context import AppContext, pass_app
from orchestrator.cli.formatting import emit_json, json_option


@click.command()
@json_option
@pass_app
def doctor(app: AppContext, as_json: bool) -> None:
    """Check the engine, where we run (host or container), our mounts, the port pool and the
    database. Exits 1 if any check fails.

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
    report = doctor_report(backends)
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
        elif name == "port_pool":
            click.echo(
                f"port pool: {section['range']} on {section['host_ip']}: "
                f"{section['free']} free of {section['size']} "
                f"({section['leased']} leased, {section['published_by_others']} "
                "published by other containers)"
            )

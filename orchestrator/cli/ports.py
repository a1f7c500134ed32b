"""`orchestrator ports`: the host port leases."""

from __future__ import annotations

import click

from orchestrator.cli.context import AppContext, pass_app
from orchestrator.cli.formatting import emit_json, emit_table
from orchestrator.cli.options import json_option
from orchestrator.operations import shapes


@click.group()
def ports() -> None:
    """Host ports leased to running jobs."""


@ports.command(name="list")
@json_option
@pass_app
def list_ports(app: AppContext, as_json: bool) -> None:
    """List the host ports leased to runs now.

    Example: orchestrator ports list --json
    """
    rows = [shapes.lease(lease) for lease in app.operations().leases()]
    if as_json:
        emit_json(rows)
    elif not rows:
        click.echo("no ports leased")
    else:
        emit_table(
            ["HOST IP", "PORT", "PROTOCOL", "CONTAINER PORT", "RUN", "JOB"],
            [list(row.values()) for row in rows],
        )

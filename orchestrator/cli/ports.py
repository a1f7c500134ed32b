"""`orchestrator ports`: the host port leases."""

from __future__ import annotations

import click

from orchestrator import shapes
from orchestrator.cli.context import AppContext, pass_app
from orchestrator.cli.formatting import emit_listing
from orchestrator.cli.options import json_option


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
    emit_listing(
        [shapes.lease(lease) for lease in app.operations().leases()],
        as_json,
        shape=lambda row: row,
        empty="no ports leased",
        headers=["HOST IP", "PORT", "PROTOCOL", "CONTAINER PORT", "RUN", "JOB"],
        row=lambda row: list(row.values()),
    )

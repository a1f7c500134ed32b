"""`orchestrator audit`: who changed what, through the CLI or the HTTP API."""

from __future__ import annotations

import click

from orchestrator.cli.context import AppContext, pass_app
from orchestrator.cli.formatting import emit_json, emit_table, human_time
from orchestrator.cli.options import json_option
from orchestrator.operations import shapes

MAX_ID = 2**63 - 1


@click.group()
def audit() -> None:
    """The audit trail: every write through the CLI or the HTTP API."""


@audit.command(name="list")
@click.option("--limit", type=click.IntRange(1, MAX_ID), default=50, help="At most this many.")
@click.option(
    "--before",
    type=click.IntRange(1, MAX_ID),
    metavar="ID",
    help="The next page: entries listed after this one.",
)
@json_option
@pass_app
def list_audit(app: AppContext, limit: int, before: int | None, as_json: bool) -> None:
    """List writes, newest first: when, who (cli:USER or api:TOKEN-NAME), what, result.

    Example: orchestrator audit list --json
    """
    entries = app.operations().audit_entries(limit=limit, before=before)
    if as_json:
        emit_json([shapes.audit_entry(entry) for entry in entries])
        return
    if not entries:
        click.echo("no writes recorded")
        return
    emit_table(
        ["ID", "AT (UTC)", "ACTOR", "ACTION", "TARGET", "RESULT"],
        [
            [entry.id, human_time(entry.at), entry.actor, entry.action, entry.target, entry.result]
            for entry in entries
        ],
    )

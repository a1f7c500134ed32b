"""`orchestrator audit`: who changed what, through the CLI or the HTTP API."""

from __future__ import annotations

import click

from orchestrator import shapes
from orchestrator.cli.context import AppContext, pass_app
from orchestrator.cli.formatting import emit_listing, human_time
from orchestrator.cli.options import json_option, limit_option
from orchestrator.records import MAX_RUN_ID


@click.group()
def audit() -> None:
    """The audit trail: every write through the CLI or the HTTP API."""


@audit.command(name="list")
@limit_option()
@click.option(
    "--before",
    type=click.IntRange(1, MAX_RUN_ID),
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
    emit_listing(
        entries,
        as_json,
        shape=shapes.audit_entry,
        empty="no writes recorded",
        headers=["ID", "AT (UTC)", "ACTOR", "ACTION", "TARGET", "RESULT"],
        row=lambda entry: [
            entry.id,
            human_time(entry.at),
            entry.actor,
            entry.action,
            entry.target,
            entry.result,
        ],
    )

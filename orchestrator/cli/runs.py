"""`orchestrator runs`: browse and prune the run history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import click

from orchestrator import shapes
from orchestrator.cli.context import AppContext, pass_app
from orchestrator.cli.formatting import (
    emit_json,
    emit_listing,
    human_time,
    terminal_safe,
)
from orchestrator.cli.options import json_option, limit_option, raw_option
from orchestrator.errors import InvalidInputError
from orchestrator.records import MAX_RUN_ID, RunRecord, RunStatus
from orchestrator.units import format_size, parse_duration, parse_moment


@click.group()
def runs() -> None:
    """Run history: list, show, prune."""


# Run ids are 64-bit in both databases.
RUN_ID = click.IntRange(1, MAX_RUN_ID)


class MomentType(click.ParamType[datetime]):
    """An ISO 8601 time (UTC if it has no offset) or a duration back from now (`2h`, `7d`)."""

    name = "TIME"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_moment(str(value), datetime.now(UTC))
        except InvalidInputError as error:
            self.fail(str(error))


class DurationType(click.ParamType[timedelta]):
    name = "DURATION"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        try:
            return parse_duration(str(value))
        except InvalidInputError as error:
            self.fail(str(error))


def _duration(run: RunRecord) -> str:
    if run.started_at is None or run.finished_at is None:
        return "-"
    return f"{(run.finished_at - run.started_at).total_seconds():.1f}s"


@runs.command(name="list")
@click.option("--job", help="Only runs of this job.")
@click.option(
    "--status",
    type=click.Choice([status.value for status in RunStatus]),
    help="Only runs with this status.",
)
@click.option(
    "--since",
    type=MomentType(),
    help="Only runs scheduled at or after this time (ISO 8601) or this long ago (7d).",
)
@limit_option("runs")
@click.option(
    "--before",
    type=RUN_ID,
    metavar="ID",
    help="The next page: runs listed after this one (the last id of the previous page).",
)
@json_option
@pass_app
def list_runs(
    app: AppContext,
    job: str | None,
    status: str | None,
    since: datetime | None,
    limit: int,
    before: int | None,
    as_json: bool,
) -> None:
    """List runs, newest first.

    Example: orchestrator runs list --job nightly-report --status failed --since 7d
    """
    records = app.operations().runs.list(
        job=job,
        status=RunStatus(status) if status else None,
        since=since,
        before=before,
        limit=limit,
    )
    emit_listing(
        records,
        as_json,
        shape=shapes.run_summary,
        empty="no runs match",
        headers=[
            "ID",
            "JOB",
            "STATUS",
            "TRIGGER",
            "ATTEMPT",
            "SCHEDULED FOR (UTC)",
            "DURATION",
            "EXIT",
        ],
        row=lambda run: [
            run.id,
            run.job,
            run.status.value,
            run.trigger.value,
            run.attempt,
            human_time(run.scheduled_for),
            _duration(run),
            run.exit_code,
        ],
    )


@runs.command()
@click.argument("run_id", metavar="ID", type=RUN_ID)
@json_option
@raw_option
@pass_app
def show(app: AppContext, run_id: int, as_json: bool, raw: bool) -> None:
    """Show one run with the captured tail of its output.

    Example: orchestrator runs show 42
    """
    run = app.operations().runs.get(run_id)
    if as_json:
        emit_json(shapes.run_detail(run))
        return
    fields = shapes.run_summary(run)
    fields["ports"] = ", ".join(f"{key}->{port}" for key, port in run.ports.items()) or None
    for key, value in fields.items():
        click.echo(f"{key + ':':15} {'-' if value is None else value}")
    deliveries = app.operations().runs.deliveries(run_id)
    if deliveries:
        click.echo("")
        click.echo("--- notifications ---")
        for item in deliveries:
            last = item.answers[-1] if item.answers else {}
            answer = f"HTTP {last['status']}" if "status" in last else last.get("error", "-")
            click.echo(
                f"{item.event} -> {item.url}: {item.status.value} "
                f"({item.attempts} attempt(s), last: {answer})"
            )
    click.echo("")
    if run.output_truncated and run.output_limit:
        click.echo(f"--- output (last {format_size(run.output_limit)} only) ---")
    else:
        click.echo("--- output ---")
    _print_output(run.output or "", raw)


def _print_output(text: str, raw: bool) -> None:
    data = text.encode("utf-8", "surrogateescape")
    click.echo(data if raw else terminal_safe(data), nl=bool(data) and not data.endswith(b"\n"))


@runs.command()
@click.option(
    "--older-than",
    type=DurationType(),
    default=None,
    help="Delete every job's finished runs scheduled longer ago than this (30d), "
    "instead of applying the history rules.",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@pass_app
def prune(app: AppContext, older_than: Any, dry_run: bool) -> None:
    """Apply the history rules now (each job's `history:`, else ORCHESTRATOR_HISTORY_KEEP
    and ORCHESTRATOR_HISTORY_MAX_AGE; the audit log by ORCHESTRATOR_AUDIT_MAX_AGE).
    Unfinished runs, each job's newest run and last scheduled fire, and chain parents of
    runs that stay are always kept.

    Example: orchestrator runs prune --dry-run
    """
    from orchestrator.cli.context import retention_defaults

    defaults = retention_defaults()
    result = app.operations().runs.apply_retention(defaults, older_than=older_than, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    if older_than is not None:
        cutoff = datetime.now(UTC) - older_than
        click.echo(f"{verb} {result.total_runs} run(s) scheduled before {human_time(cutoff)}")
    else:
        jobs = sum(1 for count in result.runs.values() if count)
        click.echo(f"{verb} {result.total_runs} run(s) of {jobs} job(s) by the history rules")
    if defaults.audit_max_age is not None:
        click.echo(f"{verb} {result.audit} audit entr(ies)")


@runs.command()
@click.argument("run_id", metavar="ID", type=RUN_ID)
@click.option("--follow", "-f", is_flag=True, help="Keep printing output until the run ends.")
@raw_option
@pass_app
def logs(app: AppContext, run_id: int, follow: bool, raw: bool) -> None:
    """Print a run's output: live from its container while it runs, else the recorded tail.

    Example: orchestrator runs logs 42 --follow
    """
    import sys

    from orchestrator.operations import Ended, Output, Waiting, Withheld

    for event in app.operations().runs.watch(run_id, follow=follow):
        if isinstance(event, Waiting):
            click.echo(
                f"run {run_id} of {event.run.job} is pending: waiting for a scheduler to start "
                "it (is 'orchestrator serve' running?)",
                err=True,
            )
        elif isinstance(event, Withheld):
            click.echo(
                f"live output of run {run_id} withheld: the secrets of job {event.run.job!r} "
                "cannot be read here to mask it; its masked tail is shown when it ends",
                err=True,
            )
        elif isinstance(event, Output):
            sys.stdout.buffer.write(event.data if raw else terminal_safe(event.data))
            sys.stdout.buffer.flush()
        elif isinstance(event, Ended) and not event.streamed and event.run.output:
            _print_output(event.run.output, raw)


@runs.command()
@click.argument("run_id", metavar="ID", type=RUN_ID)
@click.option(
    "--grace",
    type=click.IntRange(0, 86400),
    default=10,
    help="Seconds between SIGTERM and SIGKILL (at most a day).",
)
@pass_app
def cancel(app: AppContext, run_id: int, grace: int) -> None:
    """Cancel a pending or running run: its container is stopped, it ends `cancelled`.

    Example: orchestrator runs cancel 42
    """
    run = app.operations().runs.cancel(run_id, grace)
    click.echo(f"run {run_id} of {run.job} cancelled")

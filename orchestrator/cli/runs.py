"""`orchestrator runs`: browse and prune the run history."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from orchestrator.cli.context import AppContext, pass_app
from orchestrator.cli.formatting import (
    emit_json,
    emit_table,
    human_time,
    iso,
    json_option,
    raw_option,
    terminal_safe,
)
from orchestrator.errors import InvalidInputError, quote
from orchestrator.masking import OutputMasker
from orchestrator.records import RunRecord, RunStatus
from orchestrator.store.runs import RunRepository
from orchestrator.units import format_size, parse_duration


@click.group()
def runs() -> None:
    """Run history: list, show, prune."""


def run_summary(run: RunRecord) -> dict[str, Any]:
    """The `runs list --json` shape."""
    return {
        "id": run.id,
        "job": run.job,
        "status": run.status.value,
        "trigger": run.trigger.value,
        "attempt": run.attempt,
        "first_run_id": run.first_run_id,
        "scheduled_for": iso(run.scheduled_for),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "exit_code": run.exit_code,
        "container_id": run.container_id,
        "image": run.image,
        "image_digest": run.image_digest,
        "ports": run.ports,
        "error": run.error,
    }


# Run ids are 64-bit in both databases.
MAX_ID = 2**63 - 1
RUN_ID = click.IntRange(1, MAX_ID)


class MomentType(click.ParamType[datetime]):
    """An ISO 8601 time (UTC if it has no offset) or a duration back from now (`2h`, `7d`)."""

    name = "TIME"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:
            return datetime.now(UTC) - parse_duration(text)
        except InvalidInputError:
            pass
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            if re.fullmatch(r"\d+\s*[a-zA-Z][\w\s]*", text):  # meant as a duration
                try:
                    parse_duration(text)
                except InvalidInputError as error:
                    self.fail(str(error))
            self.fail(f"{quote(text)} is neither a time (2026-11-01T03:00:00Z) nor a duration (7d)")
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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
@click.option("--limit", type=click.IntRange(1, MAX_ID), default=50, help="At most this many runs.")
@json_option
@pass_app
def list_runs(
    app: AppContext,
    job: str | None,
    status: str | None,
    since: datetime | None,
    limit: int,
    as_json: bool,
) -> None:
    """List runs, newest first.

    Example: orchestrator runs list --job nightly-report --status failed --since 7d
    """
    with app.database().session() as session:
        records = RunRepository(session).list(
            job=job, status=RunStatus(status) if status else None, since=since, limit=limit
        )
    if as_json:
        emit_json([run_summary(run) for run in records])
        return
    if not records:
        click.echo("no runs match")
        return
    emit_table(
        ["ID", "JOB", "STATUS", "TRIGGER", "ATTEMPT", "SCHEDULED FOR (UTC)", "DURATION", "EXIT"],
        [
            [
                run.id,
                run.job,
                run.status.value,
                run.trigger.value,
                run.attempt,
                human_time(run.scheduled_for),
                _duration(run),
                run.exit_code,
            ]
            for run in records
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
    with app.database().session() as session:
        run = RunRepository(session).get(run_id)
    if as_json:
        emit_json(
            {
                **run_summary(run),
                "created_at": iso(run.created_at),
                "output": run.output or "",
                "output_truncated": run.output_truncated,
                "output_limit": run.output_limit,
            }
        )
        return
    fields = run_summary(run)
    fields["ports"] = ", ".join(f"{key}->{port}" for key, port in run.ports.items()) or None
    for key, value in fields.items():
        click.echo(f"{key + ':':15} {'-' if value is None else value}")
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
    required=True,
    help="Delete finished runs scheduled longer ago than this (30d).",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@pass_app
def prune(app: AppContext, older_than: Any, dry_run: bool) -> None:
    """Delete old finished runs. Unfinished runs, and the newest run of every job, stay.

    Example: orchestrator runs prune --older-than 30d
    """
    cutoff = datetime.now(UTC) - older_than
    with app.database().session() as session:
        count = RunRepository(session).prune(cutoff, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {count} run(s) scheduled before {human_time(cutoff)}")


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
    import time

    from orchestrator.engine.errors import ContainerGoneError

    database = app.database()
    with database.session() as session:
        run = RunRepository(session).get(run_id)
    if follow and run.status is RunStatus.PENDING:
        click.echo(
            f"run {run_id} of {run.job} is pending: waiting for a scheduler to start it "
            "(is 'orchestrator serve' running?)",
            err=True,
        )
    while follow and run.status is RunStatus.PENDING:
        time.sleep(0.5)
        with database.session() as session:
            run = RunRepository(session).get(run_id)
    masker = _live_masker(app, run.job) if run.status is RunStatus.RUNNING else None
    if run.status is RunStatus.RUNNING and run.container_id and masker is None:
        click.echo(
            f"live output of run {run_id} withheld: the secrets of job {run.job!r} cannot be "
            "read here to mask it; its masked tail is shown when it ends",
            err=True,
        )
        while follow and not run.status.finished:
            time.sleep(0.5)
            with database.session() as session:
                run = RunRepository(session).get(run_id)
    elif run.status is RunStatus.RUNNING and run.container_id and masker is not None:
        try:
            engine = app.engine()
            chunks = (
                engine.follow_output(run.container_id)
                if follow
                else engine.output(run.container_id)
            )
            show = (lambda data: data) if raw else terminal_safe
            for chunk in chunks:
                sys.stdout.buffer.write(show(masker.feed(chunk)))
                sys.stdout.buffer.flush()
            sys.stdout.buffer.write(show(masker.flush()))
            return
        except ContainerGoneError:
            # It ended while we looked: its output is in the history by now, or soon.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with database.session() as session:
                    run = RunRepository(session).get(run_id)
                if run.status.finished:
                    break
                time.sleep(0.2)
    if run.output:
        _print_output(run.output, raw)


def _live_masker(app: AppContext, job: str) -> OutputMasker | None:
    """What masks the job's secrets in output read straight from its container; None
    when they cannot be known here (the job is gone, or its secrets are not readable)."""
    from orchestrator.errors import JobNotFoundError
    from orchestrator.secretfiles import SecretUnavailableError, load_launch_secrets
    from orchestrator.store.jobs import JobRepository

    try:
        with app.database().session() as session:
            spec = JobRepository(session).get(job).spec
        return OutputMasker(load_launch_secrets(spec, app.secrets_dir).masked)
    except (JobNotFoundError, SecretUnavailableError):
        return None


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
    with app.database().session() as session:
        run = RunRepository(session).request_cancel(run_id, datetime.now(UTC))
    if run.container_id:
        app.engine().stop(run.container_id, grace)
    click.echo(f"run {run_id} of {run.job} cancelled")

"""`orchestrator jobs`: validate, apply, list, show, enable, disable, delete."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from orchestrator import shapes
from orchestrator.cli.context import AppContext, pass_app
from orchestrator.cli.formatting import (
    emit_json,
    emit_listing,
    human_time,
    terminal_safe,
)
from orchestrator.cli.options import allow_privileged_option, json_option, raw_option
from orchestrator.records import ApplyResult, JobListing, JobRecord
from orchestrator.store import interrupts

if TYPE_CHECKING:
    from orchestrator.spec import LoadedJob

paths_argument = click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))


@click.group()
def jobs() -> None:
    """Job definitions: validate and apply YAML files, list, show and switch jobs."""


def _warn_missing_secrets(loaded: list[LoadedJob], secrets_dir: str) -> None:
    from orchestrator.operations import find_missing_secrets

    for missing in find_missing_secrets(loaded, secrets_dir):
        click.echo(
            f"warning: {missing.source}: job {missing.job!r}: secret {missing.secret!r} is not "
            f"in {secrets_dir} here: its runs fail unless the service has it",
            err=True,
        )


@jobs.command()
@paths_argument
@json_option
@pass_app
def validate(app: AppContext, paths: tuple[str, ...], as_json: bool) -> None:
    """Check job files without touching the database. Folders are searched for *.yaml/*.yml.

    Exits 2 with one line per problem if any definition is invalid; warns about
    secrets that are not in the secrets directory here.

    Example: orchestrator jobs validate jobs/
    """
    from orchestrator.operations.jobs import refuse_untrusted_files
    from orchestrator.spec import load_jobs, masked_definition

    loaded = load_jobs(paths)
    refuse_untrusted_files(loaded, app.launch_settings())
    _warn_missing_secrets(loaded, app.secrets_dir)
    if as_json:
        emit_json([{"source": job.source, **masked_definition(job.spec)} for job in loaded])
        return
    files = len({job.source for job in loaded})
    click.echo(f"{len(loaded)} job(s) in {files} file(s) are valid")


@jobs.command()
@paths_argument
@click.option("--prune", is_flag=True, help="Also delete jobs that are not in the given files.")
@click.option("--force", is_flag=True, help="With --prune: even when that deletes every job.")
@click.option("--dry-run", is_flag=True, help="Show what would change, write nothing.")
@json_option
@pass_app
def apply(
    app: AppContext,
    paths: tuple[str, ...],
    prune: bool,
    force: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Create or update jobs from files and folders (an idempotent upsert).

    Nothing is written if any definition in the batch is invalid. A job disabled with
    `jobs disable` stays disabled unless its file's own `enabled:` value changes.

    Example: orchestrator jobs apply jobs/ --prune
    """
    from orchestrator.spec import load_jobs

    loaded = load_jobs(paths)
    _warn_missing_secrets(loaded, app.secrets_dir)
    result = app.operations().jobs.apply(
        loaded, given=" ".join(paths), prune=prune, force=force, dry_run=dry_run
    )
    _report_apply(result, dry_run, as_json)


def _report_apply(result: ApplyResult, dry_run: bool, as_json: bool) -> None:
    if as_json:
        emit_json(shapes.apply_result(result, dry_run))
        return
    for verb, names in (
        ("created", result.created),
        ("updated", result.updated),
        ("deleted", result.deleted),
    ):
        for name in names:
            click.echo(f"{verb} {name}")
    prefix = "dry run, nothing written: " if dry_run else ""
    click.echo(
        f"{prefix}{len(result.created)} created, {len(result.updated)} updated, "
        f"{len(result.unchanged)} unchanged, {len(result.deleted)} deleted"
    )


@jobs.command(name="list")
@json_option
@pass_app
def list_jobs(app: AppContext, as_json: bool) -> None:
    """List every job with its next run and the status of its last run.

    Example: orchestrator jobs list --json
    """
    from orchestrator.store.sqlite_listing import job_listing

    now = datetime.now(UTC)
    # On an SQLite file at head the listing is read without importing SQLAlchemy (or the
    # use cases, which import it): that import is most of the command's time.
    records = job_listing(app.database_url)
    if records is None:
        records = app.operations().jobs.listing()
    emit_listing(
        records,
        as_json,
        shape=lambda record: shapes.job_summary(record, now),
        empty="no jobs: add some with 'orchestrator jobs apply PATH'",
        headers=[
            "NAME",
            "ENABLED",
            "SCHEDULE",
            "TIMEZONE",
            "IMAGE",
            "NEXT RUN (UTC)",
            "LAST STATUS",
        ],
        row=lambda record: [
            record.name,
            "yes" if record.enabled else "no",
            record.schedule,
            record.timezone,
            record.image,
            _next_or_state(record, now),
            record.last_status.value if record.last_status else None,
        ],
    )


def _next_or_state(record: JobRecord | JobListing, now: datetime) -> str:
    state = shapes.job_state(record, now)
    if state in ("scheduled", "disabled"):
        return human_time(shapes.next_run(record, now))
    if state == "paused" and record.paused_by:
        return f"paused by {record.paused_by}"
    return state


@jobs.command()
@click.argument("name")
@json_option
@pass_app
def show(app: AppContext, name: str, as_json: bool) -> None:
    """Show one job: its definition and its next fire times.

    `next_runs` are the schedule's next fire times; `next_run_at` is null while the
    job is disabled.

    Example: orchestrator jobs show nightly-report
    """
    now = datetime.now(UTC)
    record = app.operations().jobs.get(name)
    if as_json:
        emit_json(shapes.job_detail(record, now))
        return
    from orchestrator.schedule import next_fire_times
    from orchestrator.spec import masked_definition

    next_runs = next_fire_times(record.spec.parsed_schedule, now, shapes.NEXT_RUNS_SHOWN)
    import yaml

    click.echo(f"job {record.name} ({'enabled' if record.enabled else 'disabled'})")
    click.echo(f"revision {record.revision}, updated {human_time(record.updated_at)}")
    click.echo(f"from {record.source or '-'}")
    click.echo(f"last status: {record.last_status.value if record.last_status else '-'}")
    click.echo("")
    click.echo(yaml.safe_dump(masked_definition(record.spec), sort_keys=False).rstrip())
    click.echo("")
    click.echo(f"next runs ({record.spec.timezone}):")
    zone = getattr(record.spec.parsed_schedule, "zone", UTC)
    for moment in next_runs:
        click.echo(f"  {human_time(moment.astimezone(zone))}")
    if not record.enabled:
        click.echo("  (the job is disabled: these fire only once it is enabled)")


@jobs.command()
@pass_app
def export(app: AppContext) -> None:
    """Print every job in the database as one job file (YAML), to keep or apply elsewhere.

    Values of variables whose names look secret are printed as *** (the header names
    their jobs); they never leave the database.

    Example: orchestrator jobs export > jobs-backup.yaml
    """
    click.echo(app.operations().jobs.export(), nl=False)


def _switch(app: AppContext, name: str, enabled: bool) -> None:
    changed = app.operations().jobs.set_enabled(name, enabled)
    state = "enabled" if enabled else "disabled"
    click.echo(f"{name} {state}" if changed else f"{name} was already {state}")


@jobs.command()
@click.argument("name")
@pass_app
def enable(app: AppContext, name: str) -> None:
    """Enable a job: it fires on its schedule again.

    Example: orchestrator jobs enable nightly-report
    """
    _switch(app, name, True)


@jobs.command()
@click.argument("name")
@pass_app
def disable(app: AppContext, name: str) -> None:
    """Disable a job: it stays defined but does not fire.

    Example: orchestrator jobs disable nightly-report
    """
    _switch(app, name, False)


@jobs.command()
@click.argument("name")
@click.option("--force", is_flag=True, help="Delete it even though other jobs chain to it.")
@pass_app
def delete(app: AppContext, name: str, force: bool) -> None:
    """Delete a job definition. Its run history stays (see `runs list --job NAME`).
    Refused while other jobs chain to it (on_success, on_failure), unless --force.

    Example: orchestrator jobs delete nightly-report
    """
    app.operations().jobs.delete(name, force=force)
    click.echo(f"deleted {name}; its run history stays")


# Exit codes of `jobs run` when the job's own exit code does not apply (as docker run
# and timeout(1) use them).
EXIT_TIMED_OUT = 124
EXIT_NOT_STARTED = 125
EXIT_CANCELLED = 130


@jobs.command(name="run")
@click.argument("name")
@click.option("--detach", is_flag=True, help="Queue the run for the service and return at once.")
@click.option("--force", is_flag=True, help="Run it even though the job is disabled.")
@raw_option
@allow_privileged_option(
    "Without --detach the run is started by this command, with YOUR rights on the engine, "
    "so this is your decision, not the service's; with --detach the service decides."
)
@pass_app
def run_job(
    app: AppContext,
    name: str,
    detach: bool,
    force: bool,
    raw: bool,
    allow_privileged_jobs: bool,
) -> None:
    """Run a job now (trigger `manual`): stream its output and exit with its exit code.

    Exit codes besides the job's own: 124 timed out, 125 could not start (image, network,
    volume, port), 130 cancelled. `--detach` records a pending run for the running
    service to start, prints its id and returns.

    Example: orchestrator jobs run nightly-report
    """
    import sys

    from orchestrator.records import RunStatus

    operations = app.operations()
    if detach:
        run = operations.jobs.queue_run(name, force=force)
        click.echo(f"queued run {run.id} of {name}: the service starts it")
        return
    app.allow_privileged_jobs = allow_privileged_jobs
    out = sys.stdout.buffer
    # SIGTERM cancels the run as Ctrl-C does (as `docker run` does): recorded cancelled.
    # Either waits for a database write in progress (orchestrator/interrupts.py).
    signal.signal(signal.SIGTERM, interrupts.interrupt)
    signal.signal(signal.SIGINT, interrupts.interrupt)

    def write(chunk: bytes) -> None:
        out.write(chunk if raw else terminal_safe(chunk))
        out.flush()

    finished = operations.jobs.run_now(name, force=force, on_output=write)
    if finished.status is RunStatus.SUCCEEDED:
        return
    click.echo(f"run {finished.id} of {name} {finished.status.value}: {finished.error}", err=True)
    if finished.status is RunStatus.TIMED_OUT:
        raise SystemExit(EXIT_TIMED_OUT)
    if finished.status is RunStatus.CANCELLED:
        raise SystemExit(EXIT_CANCELLED)
    if finished.exit_code is None:
        raise SystemExit(EXIT_NOT_STARTED)
    raise SystemExit(finished.exit_code)


def _add_import() -> None:
    from orchestrator.cli.import_cmd import import_jobs

    jobs.add_command(import_jobs, "import")


_add_import()

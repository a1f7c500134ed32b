"""`orchestrator jobs`: validate, apply, list, show, enable, disable, delete."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import click

from orchestrator.cli.context import AppContext, allow_privileged_option, pass_app
from orchestrator.cli.formatting import (
    emit_json,
    emit_table,
    human_time,
    iso,
    json_option,
    raw_option,
    terminal_safe,
)
from orchestrator.errors import RefusedError
from orchestrator.records import ApplyResult, JobRecord
from orchestrator.schedule import next_fire_times
from orchestrator.spec import LoadedJob, load_jobs, masked_definition
from orchestrator.store.jobs import JobRepository

NEXT_RUNS_SHOWN = 5
paths_argument = click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))


@click.group()
def jobs() -> None:
    """Job definitions: validate and apply YAML files, list, show and switch jobs."""


def _next_run(record: JobRecord, now: datetime) -> datetime | None:
    return record.spec.trigger.next_after(now) if record.enabled else None


def job_summary(record: JobRecord, now: datetime) -> dict[str, Any]:
    """The `jobs list --json` shape."""
    return {
        "name": record.name,
        "enabled": record.enabled,
        "schedule": record.spec.schedule,
        "timezone": record.spec.timezone,
        "image": record.spec.image,
        "next_run_at": iso(_next_run(record, now)),
        "last_status": record.last_status.value if record.last_status else None,
        "revision": record.revision,
        "source": record.source,
    }


def _warn_missing_secrets(loaded: list[LoadedJob], secrets_dir: str) -> None:
    """A secret that is not here may be where the service runs: warn, do not refuse."""
    from orchestrator.secretfiles import missing_secrets

    for job in loaded:
        for name in missing_secrets(job.spec, secrets_dir):
            click.echo(
                f"warning: {job.source}: job {job.spec.name!r}: secret {name!r} is not in "
                f"{secrets_dir} here: its runs fail unless the service has it",
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
    loaded = load_jobs(paths)
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
    loaded = load_jobs(paths)
    _warn_missing_secrets(loaded, app.secrets_dir)
    database = app.database()
    with database.session() as session:
        result = JobRepository(session).apply(loaded, prune=prune)
        everything = result.deleted and not (result.created or result.updated or result.unchanged)
        if everything and not force and not dry_run:
            raise RefusedError(
                f"{' '.join(paths)} has no jobs, so --prune would delete all "
                f"{len(result.deleted)}: add --force if that is what you want"
            )
        if dry_run:
            session.rollback()
    _report_apply(result, dry_run, as_json)


def _report_apply(result: ApplyResult, dry_run: bool, as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "created": result.created,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "deleted": result.deleted,
                "dry_run": dry_run,
            }
        )
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
    now = datetime.now(UTC)
    with app.database().session() as session:
        records = JobRepository(session).list()
    if as_json:
        emit_json([job_summary(record, now) for record in records])
        return
    if not records:
        click.echo("no jobs: add some with 'orchestrator jobs apply PATH'")
        return
    emit_table(
        ["NAME", "ENABLED", "SCHEDULE", "TIMEZONE", "IMAGE", "NEXT RUN (UTC)", "LAST STATUS"],
        [
            [
                record.name,
                "yes" if record.enabled else "no",
                record.spec.schedule,
                record.spec.timezone,
                record.spec.image,
                human_time(_next_run(record, now)),
                record.last_status.value if record.last_status else None,
            ]
            for record in records
        ],
    )


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
    with app.database().session() as session:
        record = JobRepository(session).get(name)
    next_runs = next_fire_times(record.spec.trigger, now, NEXT_RUNS_SHOWN)
    if as_json:
        emit_json(
            {
                **job_summary(record, now),
                "created_at": iso(record.created_at),
                "updated_at": iso(record.updated_at),
                "definition": masked_definition(record.spec),
                "next_runs": [iso(moment) for moment in next_runs],
            }
        )
        return
    import yaml

    click.echo(f"job {record.name} ({'enabled' if record.enabled else 'disabled'})")
    click.echo(f"revision {record.revision}, updated {human_time(record.updated_at)}")
    click.echo(f"from {record.source or '-'}")
    click.echo(f"last status: {record.last_status.value if record.last_status else '-'}")
    click.echo("")
    click.echo(yaml.safe_dump(masked_definition(record.spec), sort_keys=False).rstrip())
    click.echo("")
    click.echo(f"next runs ({record.spec.timezone}):")
    zone = getattr(record.spec.trigger, "zone", UTC)
    for moment in next_runs:
        click.echo(f"  {human_time(moment.astimezone(zone))}")
    if not record.enabled:
        click.echo("  (the job is disabled: these fire only once it is enabled)")


def _switch(app: AppContext, name: str, enabled: bool) -> None:
    with app.database().session() as session:
        changed = JobRepository(session).set_enabled(name, enabled)
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
@pass_app
def delete(app: AppContext, name: str) -> None:
    """Delete a job definition. Its run history stays (see `runs list --job NAME`).

    Example: orchestrator jobs delete nightly-report
    """
    with app.database().session() as session:
        JobRepository(session).delete(name)
    click.echo(f"deleted {name}; its run history stays")


def _interrupt(number: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


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

    from orchestrator.records import RunStatus, RunTrigger

    with app.database().session() as session:
        record = JobRepository(session).get(name)
    if not record.enabled and not force:
        raise RefusedError(f"job {name} is disabled: enable it, or run it anyway with --force")
    if detach:
        from orchestrator.records import NewRun
        from orchestrator.store.runs import RunRepository

        with app.database().session() as session:
            run = RunRepository(session).add(
                NewRun(
                    job=name,
                    scheduled_for=datetime.now(UTC),
                    trigger=RunTrigger.MANUAL,
                    image=record.spec.image,
                )
            )
        click.echo(f"queued run {run.id} of {name}: the service starts it")
        return
    app.allow_privileged_jobs = allow_privileged_jobs
    launcher = app.launcher()
    run = launcher.queue(record.spec, RunTrigger.MANUAL)
    out = sys.stdout.buffer
    # SIGTERM cancels the run as Ctrl-C does (as `docker run` does): recorded cancelled.
    signal.signal(signal.SIGTERM, _interrupt)

    def write(chunk: bytes) -> None:
        out.write(chunk if raw else terminal_safe(chunk))
        out.flush()

    finished = launcher.execute(run, record.spec, on_output=write)
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

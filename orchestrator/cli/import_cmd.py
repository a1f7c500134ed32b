"""`orchestrator jobs import ofelia|deck-chores FILE`: another tool's jobs as our YAML."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli.context import AppContext, pass_app
from orchestrator.errors import InvalidInputError, InvalidSpecError

TOOLS = ("ofelia", "deck-chores")


def _read(file: str) -> str:
    try:
        return Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise InvalidInputError(f"{file}: cannot read: {reason}") from None


def translated_yaml(tool: str, file: str, text: str, project: str | None) -> tuple[str, list[str]]:
    """Our job file for `text` and one line per option or job not carried over.
    Every job is validated as ours; one we would refuse is named, not printed."""
    import yaml

    from orchestrator.spec import parse_job
    from orchestrator.spec.dropin import translate_compose, translate_ofelia_ini
    from orchestrator.spec.dropin.deck_chores import ComposeError
    from orchestrator.spec.dropin.ofelia import IniError

    try:
        if tool == "ofelia":
            translation = translate_ofelia_ini(text)
        else:
            folder = Path(file).resolve().parent.name
            translation = translate_compose(text, project or folder.lower() or "default")
    except (IniError, ComposeError) as error:
        raise InvalidInputError(f"{file}: {error}") from None
    dropped = list(translation.dropped)
    mappings = []
    for job in translation.jobs:
        try:
            parse_job(job.mapping, source=file)
        except InvalidSpecError as error:
            dropped.append(f"{tool}: job {job.original!r} refused here: {error}")
            continue
        mappings.append(job.mapping)

    class _NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: object) -> bool:
            return True

    header = f"# jobs imported from {tool} {Path(file).name} by `orchestrator jobs import`\n"
    body = yaml.dump(mappings, Dumper=_NoAliases, sort_keys=False, allow_unicode=True)
    return header + (body if mappings else "[]\n"), dropped


@click.command(name="import")
@click.argument("tool", type=click.Choice(TOOLS))
@click.argument("file", type=click.Path(path_type=str))
@click.option("--apply", "apply_jobs", is_flag=True, help="Apply the jobs instead of printing.")
@click.option("--strict", is_flag=True, help="Exit 2 when any option or job is not carried over.")
@click.option("--project", help="deck-chores: the compose project (default: `name:` or folder).")
@pass_app
def import_jobs(
    app: AppContext,
    tool: str,
    file: str,
    apply_jobs: bool,
    strict: bool,
    project: str | None,
) -> None:
    """Print the jobs of an Ofelia INI file or of a compose file's deck-chores labels as
    our job YAML (or apply them), naming on stderr every option not carried over.

    Exits 0 with those warnings, 2 with --strict when anything was not carried over
    (nothing is applied then). See docs/dropin.md for the table of options.

    Example: orchestrator jobs import ofelia ofelia.ini > jobs/ofelia.yaml
    """
    text, dropped = translated_yaml(tool, file, _read(file), project)
    for line in dropped:
        click.echo(f"warning: {line}", err=True)
    if strict and dropped:
        click.echo(f"{file}: {len(dropped)} item(s) not carried over (--strict)", err=True)
        raise SystemExit(2)
    if not apply_jobs:
        click.echo(text, nl=False)
        return
    from orchestrator.spec import load_job_texts

    loaded = load_job_texts([(file, text)])
    result = app.operations().jobs.apply(
        loaded, given=file, prune=False, force=False, dry_run=False
    )
    for verb, names in (("created", result.created), ("updated", result.updated)):
        for name in names:
            click.echo(f"{verb} {name}")
    click.echo(
        f"{len(result.created)} created, {len(result.updated)} updated, "
        f"{len(result.unchanged)} unchanged"
    )

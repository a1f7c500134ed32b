"""`orchestrator pause` / `orchestrator resume`: stop and restart the firing of jobs,
all of them or those matching a name glob; recorded with who and when (the audit)."""

from __future__ import annotations

import click

from orchestrator.cli.context import AppContext, pass_app


def _switch(app: AppContext, pattern: str, paused: bool) -> None:
    changed = app.operations().jobs.set_paused(pattern, paused)
    state = "paused" if paused else "resumed"
    if not changed:
        click.echo(f"no job changed: those matching {pattern!r} were already {state}")
    for name in changed:
        click.echo(f"{name} {state}")


@click.command()
@click.argument("pattern", metavar="[GLOB]", default="*")
@pass_app
def pause(app: AppContext, pattern: str) -> None:
    """Pause jobs (all, or by name glob) until resumed.

    A paused job is not fired.

    A paused job still runs by hand (`jobs run`), by the API or by a chain. Pause is
    kept in the database: `jobs apply` does not undo it. Fire times that pass while a
    job is paused are not caught up when it is resumed.

    Example: orchestrator pause 'backup-*'
    """
    _switch(app, pattern, True)


@click.command()
@click.argument("pattern", metavar="[GLOB]", default="*")
@pass_app
def resume(app: AppContext, pattern: str) -> None:
    """Resume paused jobs (all, or by name glob).

    They fire again from their next fire time on.

    Example: orchestrator resume 'backup-*'
    """
    _switch(app, pattern, False)

"""`orchestrator`: the admin CLI entry point and its error boundary."""

from __future__ import annotations

from typing import Any

import click

from orchestrator import __version__, settings
from orchestrator.cli.context import AppContext
from orchestrator.errors import OrchestratorError


class ErrorBoundaryGroup(click.Group):
    """Turns our errors into one line per problem on stderr and the error's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OrchestratorError as error:
            for line in str(error).splitlines() or [type(error).__name__]:
                click.echo(line, err=True)
            ctx.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(
    cls=ErrorBoundaryGroup,
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
)
@click.option(
    "--database-url",
    envvar=settings.DATABASE_URL_ENV,
    show_envvar=True,
    default=settings.DEFAULT_DATABASE_URL,
    help="Where jobs and run history live: sqlite:///PATH or postgresql://USER:PASS@HOST/DB.",
)
@click.version_option(__version__, prog_name="orchestrator")
@click.pass_context
def cli(ctx: click.Context, database_url: str) -> None:
    """Run cron jobs as sibling containers on the host's Docker engine.

    \b
    Start here:
      orchestrator db upgrade
      orchestrator jobs apply jobs/
      orchestrator jobs list
    """
    app = AppContext(database_url=database_url)
    ctx.obj = app
    ctx.call_on_close(app.close)


def _register() -> None:
    from orchestrator.cli.db import db
    from orchestrator.cli.jobs import jobs
    from orchestrator.cli.runs import runs

    cli.add_command(db)
    cli.add_command(jobs)
    cli.add_command(runs)


_register()


def main() -> None:
    cli(prog_name="orchestrator")


if __name__ == "__main__":  # pragma: no cover
    main()

"""`orchestrator`: the admin CLI entry point and its error boundary."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from orchestrator import __version__, settings
from orchestrator.cli.context import AppContext
from orchestrator.cli.options import secret_value, setting_option
from orchestrator.errors import OrchestratorError

# Subcommands, loaded only when invoked: `--help` and each command import what they use
# and no more (the docker SDK, SQLAlchemy and APScheduler stay out of `--help`). The
# short help is here so that the top-level listing need not import every module; a test
# checks it against each command's own.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "audit": (
        "orchestrator.cli.audit",
        "The audit trail: every write through the CLI or the HTTP API.",
    ),
    "db": ("orchestrator.cli.db", "Create or upgrade the database schema (Alembic)."),
    "doctor": (
        "orchestrator.cli.doctor",
        "Check the engine, where we run (host or container), our mounts, the port pool and...",
    ),
    "health": (
        "orchestrator.cli.serve",
        "Exit 0 while every loop of the service (fires, claims, maintenance) made progress...",
    ),
    "jobs": (
        "orchestrator.cli.jobs",
        "Job definitions: validate and apply YAML files, list, show and switch jobs.",
    ),
    "notifications": (
        "orchestrator.cli.notifications",
        "Notifications of run events (`notify:` in a job file): list them, test a job's.",
    ),
    "pause": (
        "orchestrator.cli.pause",
        "Pause jobs (all, or by name glob) until resumed.",
    ),
    "ports": ("orchestrator.cli.ports", "Host ports leased to running jobs."),
    "resume": (
        "orchestrator.cli.pause",
        "Resume paused jobs (all, or by name glob).",
    ),
    "runs": ("orchestrator.cli.runs", "Run history: list, show, prune."),
    "serve": (
        "orchestrator.cli.serve",
        "Run the scheduler service in the foreground: every enabled job fires on its...",
    ),
}


class ErrorBoundaryGroup(click.Group):
    """Turns our errors into one line per problem on stderr and the error's exit code;
    click's own usage errors too (one line, exit 2), instead of a usage block. Its
    subcommands (SUBCOMMANDS) are imported when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*SUBCOMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in SUBCOMMANDS:
            module = importlib.import_module(SUBCOMMANDS[cmd_name][0])
            self.add_command(getattr(module, cmd_name), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (name, self.commands[name].get_short_help_str(formatter.width))
            if name in self.commands
            else (name, SUBCOMMANDS[name][1])
            for name in self.list_commands(ctx)
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.UsageError as error:
            where = error.ctx.command_path if error.ctx else "orchestrator"
            message = " ".join(error.format_message().split())
            click.echo(f"{where}: {message} (see {where} --help)", err=True)
            sys.exit(error.exit_code)
        except click.ClickException as error:
            click.echo(" ".join(error.format_message().split()), err=True)
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)
        if isinstance(result, int):  # an exit code, from ctx.exit()
            sys.exit(result)
        return result

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
@setting_option(settings.DATABASE_URL)
@setting_option(settings.PORT_RANGE)
@setting_option(settings.PORT_HOST_IP)
@setting_option(settings.CONTAINER_ID)
@setting_option(settings.OUTPUT_LIMIT)
@setting_option(settings.KEEP_CONTAINERS)
@setting_option(settings.ALLOWED_HOST_PATHS, metavar="DIR,DIR")
@setting_option(settings.SECRETS_DIR)
@setting_option(settings.REGISTRY_AUTH, metavar="SECRET")
@setting_option(settings.CONTAINER_LABELS, "container_labels", metavar="KEY=VALUE")
@click.version_option(__version__, prog_name="orchestrator")
@click.pass_context
def cli(
    ctx: click.Context,
    database_url: str,
    port_range: str,
    port_host_ip: str,
    container_id: str | None,
    output_limit: str,
    keep_containers: bool,
    allowed_host_paths: str,
    secrets_dir: str,
    registry_auth: str | None,
    container_labels: tuple[str, ...],
) -> None:
    """Run cron jobs as sibling containers on the host's Docker engine.

    \b
    Start here:
      orchestrator db upgrade
      orchestrator jobs apply jobs/
      orchestrator jobs list
    """
    _configure_logging()
    database_url = secret_value(ctx, settings.DATABASE_URL, "database_url", database_url)
    app = AppContext(
        database_url=database_url,
        port_range=port_range,
        port_host_ip=port_host_ip,
        container_id=container_id,
        output_limit=output_limit,
        keep_containers=keep_containers,
        container_labels=container_labels,
        allowed_host_paths=settings.split_list(allowed_host_paths),
        allowed_networks=os.environ.get(settings.ALLOWED_NETWORKS.env),
        allowed_volumes=settings.split_list(os.environ.get(settings.ALLOWED_VOLUMES.env)),
        secrets_dir=secrets_dir,
        registry_auth=registry_auth or None,
        docker_host=os.environ.get(settings.DOCKER_HOST.env) or None,
        default_notify=os.environ.get(settings.NOTIFY.env) or None,
        notify_allowed_hosts=os.environ.get(settings.NOTIFY_ALLOWED_HOSTS.env, ""),
        allow_low_ports=os.environ.get(settings.ALLOW_LOW_PORTS_ENV),
        unpinned_binds=os.environ.get(settings.UNPINNED_BINDS_ENV),
        default_pids_limit=os.environ.get(settings.DEFAULT_PIDS_LIMIT_ENV),
        secret_grants=os.environ.get(settings.SECRET_GRANTS_ENV),
    )
    ctx.obj = app
    ctx.call_on_close(app.close)
    app.check_settings()


def _configure_logging() -> None:
    import logging

    if not logging.getLogger().handlers:
        from orchestrator.logsetup import configure_logging

        configure_logging("text", "warning")


def main() -> None:
    cli(prog_name="orchestrator")


if __name__ == "__main__":  # pragma: no cover
    main()

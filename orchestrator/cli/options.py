"""The options more than one command takes, and each setting's option built from its row
in orchestrator.settings (so a setting's name, variable, default and help are written
once)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from orchestrator import settings
from orchestrator.errors import InvalidInputError
from orchestrator.records import MAX_RUN_ID
from orchestrator.settings import Setting

F = TypeVar("F", bound=Callable[..., Any])


def setting_option(setting: Setting[Any], *names: str, **extra: Any) -> Callable[[F], F]:
    """`--NAME` for a setting row: its variable (shown in --help), default and help.
    A boolean default makes a flag, a tuple a repeatable option. `names` adds to the
    option's name (a parameter name of its own); `extra` holds click's own arguments
    (type, metavar) and overrides the row's."""
    attrs: dict[str, Any] = {"envvar": setting.env, "show_envvar": True}
    if isinstance(setting.default, bool):
        attrs["is_flag"] = True  # off unless given
    elif isinstance(setting.default, tuple):
        attrs["multiple"] = True
    elif setting.default is not None:
        attrs["default"] = setting.default
    if setting.help:
        attrs["help"] = setting.help
    return click.option(f"--{setting.name}", *names, **{**attrs, **extra})


def secret_value(ctx: click.Context, setting: Setting[Any], parameter: str, value: str) -> str:
    """A secret setting's option value, or the secret in the file its `_FILE` twin names
    (compose secrets); both given is an error."""
    given = ctx.get_parameter_source(parameter) is not click.core.ParameterSource.DEFAULT
    return _from_twin(setting, value, given) or value


def secret_from_env(setting: Setting[Any]) -> str | None:
    """A secret setting that has no option: its variable, or the file its twin names."""
    value = os.environ.get(setting.env) or None
    return _from_twin(setting, value, value is not None)


def _from_twin(setting: Setting[Any], value: str | None, given: bool) -> str | None:
    from orchestrator.cli.context import read_file_twin

    twin = setting.env + settings.FILE_SUFFIX
    path = os.environ.get(twin)
    if not path:
        return value
    if given:
        raise InvalidInputError(f"set {setting.env} or {twin}, not both")
    return read_file_twin(twin, path)


def json_option(function: F) -> F:
    """Add `--json` to a command that lists or shows something."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(
        function
    )


def limit_option(what: str = "") -> Callable[[F], F]:
    """`--limit`: how many a listing shows (50 unless given)."""
    at_most = f"At most this many {what}".rstrip() + "."
    return click.option("--limit", type=click.IntRange(1, MAX_RUN_ID), default=50, help=at_most)


raw_option = click.option(
    "--raw",
    is_flag=True,
    help="Print the job's output byte for byte, terminal control sequences included.",
)


def allow_privileged_option(who: str) -> Callable[[F], F]:
    """`--allow-privileged-jobs`: the service's key of the two (see policies/safety.py)."""
    row = settings.ALLOW_PRIVILEGED_JOBS
    return setting_option(row, help=f"{row.help} {who}")


health_file_option = setting_option(settings.HEALTH_FILE, type=click.Path(path_type=Path))

"""The settings table (orchestrator.settings) is the one place for each setting: every
option that reads a variable is built from a row of it, and no name is used twice."""

from __future__ import annotations

import click
import pytest

from orchestrator import settings
from orchestrator.cli.main import cli


def _commands() -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []

    def walk(command: click.Command, path: str) -> None:
        found.append((path, command))
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                walk(sub, f"{path} {name}")

    walk(cli, "orchestrator")
    return found


COMMANDS = _commands()
BY_ENV = {setting.env: setting for setting in settings.SETTINGS}


def test_the_top_level_group_and_serve_are_checked() -> None:
    paths = {path for path, _ in COMMANDS}
    assert {"orchestrator", "orchestrator serve", "orchestrator health"} <= paths


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[path for path, _ in COMMANDS])
def test_every_option_with_a_variable_is_a_row(path: str, command: click.Command) -> None:
    for param in command.params:
        if not isinstance(param, click.Option) or param.envvar is None:
            continue
        assert isinstance(param.envvar, str), f"{path} {param.opts}: one variable"
        setting = BY_ENV.get(param.envvar)
        assert setting is not None, (
            f"{path} {param.opts} reads {param.envvar}, which is not a row of "
            "orchestrator.settings: build it with cli.options.setting_option"
        )
        assert f"--{setting.name}" in param.opts
        if setting.help:
            assert param.help is not None and param.help.startswith(setting.help)
        if setting.default is not None and not isinstance(setting.default, bool | tuple):
            assert param.default == setting.default


def test_names_and_variables_are_unique() -> None:
    names = [setting.name for setting in settings.SETTINGS]
    envs = [setting.env for setting in settings.SETTINGS]
    assert len(set(names)) == len(names)
    assert len(set(envs)) == len(envs)


def test_every_row_is_in_the_table() -> None:
    rows = {id(value) for value in vars(settings).values() if isinstance(value, settings.Setting)}
    assert rows == {id(setting) for setting in settings.SETTINGS}


def test_the_table_stays_pure() -> None:
    import ast
    from pathlib import Path

    assert settings.__file__ is not None
    tree = ast.parse(Path(settings.__file__).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert imported <= {"__future__", "dataclasses", "typing"}

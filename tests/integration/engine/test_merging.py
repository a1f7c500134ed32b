"""The argv a job container runs, as Docker composes it, and its merged form."""

from __future__ import annotations

from orchestrator.engine.docker.merging import MERGING_ENTRYPOINT, ImageShape, merged, program

IMAGE = ImageShape(entrypoint=("/entry.sh",), command=("serve", "--port", "1"), has_shell=True)


def test_the_image_defaults_run_when_the_job_gives_nothing() -> None:
    assert program(IMAGE, None, None) == ("/entry.sh", "serve", "--port", "1")


def test_a_command_replaces_only_the_image_command() -> None:
    assert program(IMAGE, None, ["backup"]) == ("/entry.sh", "backup")
    assert program(IMAGE, None, []) == ("/entry.sh",)


def test_an_entrypoint_clears_the_image_command_too() -> None:
    assert program(IMAGE, ["/bin/other"], None) == ("/bin/other",)
    assert program(IMAGE, ["/bin/other"], ["x"]) == ("/bin/other", "x")
    assert program(IMAGE, [], ["date"]) == ("date",)


def test_merged_runs_the_same_program_through_the_shell() -> None:
    assert merged(IMAGE, None, ["backup"]) == (MERGING_ENTRYPOINT, ("/entry.sh", "backup"))
    assert MERGING_ENTRYPOINT == ("/bin/sh", "-c", 'exec "$@" 2>&1', "sh")


def test_nothing_is_merged_without_a_shell_or_a_program() -> None:
    shell_less = ImageShape(entrypoint=(), command=("/app",), has_shell=False)
    assert merged(shell_less, None, None) is None
    empty = ImageShape(entrypoint=(), command=(), has_shell=True)
    assert merged(empty, None, None) is None  # the engine names what is missing

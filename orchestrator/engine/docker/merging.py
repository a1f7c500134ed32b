"""stdout and stderr in the order the job wrote them.

Docker reads a container's two pipes in two goroutines and stamps each line when it
reads it, so the order between the streams is lost, even in the timestamps (`echo 1;
echo 2 >&2; echo 3` comes back `2 1 3` about half the time). Only one pipe keeps the
order. So where the image has a shell, the job's program is started through it with
stderr joined to stdout: `/bin/sh -c 'exec "$@" 2>&1' sh PROGRAM ARGS...`. `exec`
replaces the shell, so the program is still PID 1 and gets the signals; nothing else
changes but the exit of a program that is not in the image: 127 from the shell (as
`docker run` gives) instead of the engine refusing the start. An image without a shell
(scratch, distroless) runs as it is, in the engine's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SHELL = "/bin/sh"
MERGING_ENTRYPOINT = (SHELL, "-c", 'exec "$@" 2>&1', "sh")


@dataclass(frozen=True)
class ImageShape:
    """What an image runs by default, and whether it has a shell to merge through."""

    entrypoint: tuple[str, ...]
    command: tuple[str, ...]
    has_shell: bool


def program(
    image: ImageShape, entrypoint: Sequence[str] | None, command: Sequence[str] | None
) -> tuple[str, ...]:
    """The argv the engine would run, as Docker composes it: an entrypoint given clears
    the image's default command as well as its entrypoint."""
    if entrypoint is not None:
        return (*entrypoint, *(command or ()))
    return (*image.entrypoint, *(image.command if command is None else command))


def merged(
    image: ImageShape, entrypoint: Sequence[str] | None, command: Sequence[str] | None
) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(entrypoint, command) that run the same program with stderr joined to stdout, or
    None where it cannot be done (no shell, or nothing to run: the engine says why)."""
    argv = program(image, entrypoint, command)
    if not image.has_shell or not argv:
        return None
    return MERGING_ENTRYPOINT, argv

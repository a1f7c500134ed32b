"""What the database's text columns can hold, and how a value is made to fit: the same
rules on SQLite and PostgreSQL, so a run reads back the same on both. Pure.

PostgreSQL's text refuses NUL; neither driver takes a string that is not valid Unicode
(a lone surrogate); PostgreSQL enforces VARCHAR(n), SQLite does not. A value a user
writes (a job's URLs) is refused at apply (`URL_LENGTH`); a value a run produces (its
output, its error) is made to fit here, before the store writes it."""

from __future__ import annotations

from typing import overload

# The widths of the columns a job's apply or a run's end writes from a user's values
# (orchestrator/store/models.py declares its columns with these).
URL_LENGTH = 2048  # notifications.url: a webhook, an Apprise URL, a ping with its suffix
SOURCE_LENGTH = 1024  # jobs.source: the file a job came from
# How much of a database error a short end keeps (`could not record the full end: ...`).
REASON_LENGTH = 500


@overload
def fit_text(value: str) -> str: ...
@overload
def fit_text(value: None) -> None: ...
def fit_text(value: str | None) -> str | None:
    """Text any column takes: NUL written `\\x00` and a lone surrogate `\\udc80`, the
    escapes the output tail already uses for bytes that are not UTF-8."""
    if value is None:
        return None
    if "\x00" in value:
        value = value.replace("\x00", "\\x00")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def fit_tail(value: str, width: int) -> str:
    """`value` in at most `width` characters: its end kept (a path's file name), `...`
    where its start was cut."""
    if len(value) <= width:
        return value
    return "..." + value[-(width - 3) :]


def fit_head(value: str, width: int) -> str:
    """`value` in at most `width` characters: its start kept, `...` where it was cut."""
    if len(value) <= width:
        return value
    return value[: width - 3] + "..."

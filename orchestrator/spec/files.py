"""Job files: YAML texts, files and folders read into validated jobs, one batch at a time
(every problem collected, nothing returned when there is one); and the service-wide
notify setting. Pure but for reading the files it is given."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml

from orchestrator.errors import InvalidSpecError, quote
from orchestrator.spec.fields import parse_job
from orchestrator.spec.model import DEFAULT_NOTIFY_ON, JobSpec, LoadedJob, NotifySpec
from orchestrator.spec.values import _Problem, _url
from orchestrator.spec.yaml12 import load_all

JOB_FILE_SUFFIXES = (".yaml", ".yml")


def _documents(text: str, source: str) -> list[object]:
    try:
        return load_all(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        hint = ""
        if any(
            clue in str(problem)
            for clue in ("cannot start any token", "alias", "alphabetic or numeric")
        ):
            hint = " (quote values that start with *, @ or &)"
        raise InvalidSpecError(f"{source}: {where}invalid YAML: {problem}{hint}") from None
    except RecursionError:
        raise InvalidSpecError(f"{source}: invalid YAML: nested too deeply") from None


def parse_jobs_text(text: str, source: str) -> list[JobSpec]:
    """All jobs in one YAML text (a job, a list of jobs, or several documents)."""
    specs: list[JobSpec] = []
    problems: list[str] = []
    for document in _documents(text, source):
        if document is None:
            continue
        items = document if isinstance(document, list) else [document]
        for item in items:
            index = len(specs) + len(problems)
            try:
                specs.append(parse_job(item, source, index))
            except InvalidSpecError as error:
                problems.append(str(error))
    if problems:
        raise InvalidSpecError("\n".join(problems))
    return specs


def job_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Expand files and folders (recursively, *.yaml and *.yml, in name order) into files."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(item for item in path.rglob("*") if item.suffix in JOB_FILE_SUFFIXES)
            for item in found:
                if item.is_symlink() and not item.exists():
                    raise InvalidSpecError(f"{item}: a symbolic link to nothing")
            yield from (item for item in found if item.is_file())
        elif path.is_file():
            yield path
        else:
            raise InvalidSpecError(f"{raw}: no such file or folder")


def load_jobs(paths: Iterable[str | Path]) -> list[LoadedJob]:
    """Every job in the given files and folders, validated as one batch.

    All problems are collected; if there are any, InvalidSpecError carries one line for
    each and nothing is returned, so a caller never acts on half a batch.
    """
    texts: list[tuple[str, str]] = []
    problems: list[str] = []
    for file in job_files(paths):
        try:
            texts.append((str(file), file.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as error:
            problems.append(f"{file}: cannot read: {error}")
    return load_job_texts(texts, problems)


def load_job_texts(
    texts: Iterable[tuple[str, str]], problems: list[str] | None = None
) -> list[LoadedJob]:
    """Every job in (source, YAML text) pairs, validated as one batch (as `load_jobs`):
    the way a job file sent to the HTTP API is read."""
    loaded: list[LoadedJob] = []
    problems = list(problems or [])
    seen: dict[str, str] = {}
    for source, text in texts:
        try:
            specs = parse_jobs_text(text, source)
        except InvalidSpecError as error:
            problems.extend(str(error).splitlines())
            continue
        for spec in specs:
            if spec.name in seen:
                problems.append(
                    f"{source}: job {quote(spec.name)}: name: also defined in {seen[spec.name]}"
                )
                continue
            seen[spec.name] = source
            loaded.append(LoadedJob(spec=spec, source=source))
    if problems:
        raise InvalidSpecError("\n".join(problems))
    return loaded


def parse_default_notify(text: str, setting: str) -> tuple[NotifySpec, ...]:
    """The service-wide receivers told of the runs of jobs that name none (failed,
    timed_out and lost): whitespace-separated URLs, http(s) ones webhooks, any other
    an Apprise URL."""
    targets = []
    for url in text.split():
        webhook = url.lower().startswith(("http://", "https://"))
        try:
            targets.append(
                NotifySpec(
                    url=_url(url, setting, ("http", "https") if webhook else None),
                    on=DEFAULT_NOTIFY_ON,
                    kind="webhook" if webhook else "apprise",
                )
            )
        except _Problem as problem:
            raise InvalidSpecError(f"{setting}: {problem.message}") from None
    return tuple(targets)

"""deck-chores' jobs (`deck-chores.<job>.<attribute>` labels) as our job mappings.

Meanings carried over (deck-chores docs/usage.rst): every job is a command executed in the
labelled container (an exec job); with the `service` flag (on by default) the containers
of one compose service share ONE job, run in one of them; `max` (default 1) of running
instances; `user` falls back to `deck-chores.options.user`; the cron field order is its own
(see schedules.py). Jobs are named `<service or container>.<job>`.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from orchestrator.spec.dropin.common import Refused, Translated, Translation, normalise_name
from orchestrator.spec.dropin.schedules import (
    deck_chores_cron,
    deck_chores_date,
    deck_chores_interval,
    deck_chores_jitter,
)
from orchestrator.spec.yaml12 import load_all

TOOL = "deck-chores"
PREFIX = "deck-chores."
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
DEFAULT_FLAGS = ("image", "service")
_ATTRIBUTES = (
    "command",
    "cron",
    "date",
    "interval",
    "jitter",
    "max",
    "timezone",
    "user",
    "workdir",
)


class ComposeError(ValueError):
    """A compose file that cannot be read: the message says where."""


def _flags(text: str | None) -> set[str]:
    flags = set(DEFAULT_FLAGS)
    for item in (text or "").split(","):
        item = item.strip().lower()
        if item.startswith("no") and item[2:] in DEFAULT_FLAGS:
            flags.discard(item[2:])
        elif item:
            flags.add(item)
    return flags


def _job(
    original: str,
    name: str,
    attributes: Mapping[str, str],
    environment: Mapping[str, str],
    target: dict[str, Any],
    default_user: str | None,
    dropped: list[str],
) -> dict[str, Any]:
    where = f'{TOOL}: job "{original}"'
    if not attributes.get("command"):
        raise Refused("command is required")
    triggers = [key for key in ("cron", "date", "interval") if attributes.get(key)]
    if len(triggers) != 1:
        raise Refused("needs exactly one of cron, date or interval")
    timezone = attributes.get("timezone") or "UTC"
    description = f"from {TOOL} job {original!r}"
    data: dict[str, Any] = {"name": name, "description": description, "kind": "exec", **target}
    if timezone != "UTC":
        data["timezone"] = timezone
    (trigger,) = triggers
    if trigger == "cron":
        data["schedule"] = deck_chores_cron(attributes["cron"], timezone)
    elif trigger == "interval":
        data["schedule"] = deck_chores_interval(attributes["interval"])
    else:
        if attributes.get("jitter"):
            raise Refused("jitter cannot be given with date (deck-chores refuses it too)")
        data["at"] = deck_chores_date(attributes["date"], timezone)
    try:
        data["command"] = shlex.split(attributes["command"])
    except ValueError as error:
        raise Refused(f"command cannot be split into words: {error}") from None
    if attributes.get("jitter"):
        jitter = deck_chores_jitter(attributes["jitter"])
        if jitter:
            data["jitter"] = jitter
    maximum = attributes.get("max", "1").strip()
    if not maximum.isdigit() or int(maximum) < 1:
        raise Refused(f"max {maximum!r} is not a positive number")
    data["concurrency"] = "forbid" if int(maximum) == 1 else "allow"
    if int(maximum) > 1:
        dropped.append(
            f"{where}: max {maximum} dropped: overlapping runs are not counted here "
            "(concurrency: allow, any number)"
        )
    user = attributes.get("user") or default_user
    if user:
        data["user"] = user
    if attributes.get("workdir"):
        data["working_dir"] = attributes["workdir"]
    if environment:
        data["environment"] = dict(environment)
    for key in sorted(set(attributes) - set(_ATTRIBUTES)):
        dropped.append(f"{where}: {key} dropped: not a deck-chores attribute")
    return data


def translate_deck_chores_labels(
    container: str, labels: Mapping[str, str], *, service_scope: str | None = None
) -> Translation:
    """The `deck-chores.*` labels of one container. With the `service` flag and compose's
    project and service labels, the job runs in one replica (selector, pick: one)."""
    result = Translation()
    options = {
        k[len(PREFIX + "options.") :]: v
        for k, v in labels.items()
        if k.startswith(PREFIX + "options.")
    }
    flags = _flags(options.pop("flags", None))
    default_user = options.pop("user", None)
    for key in sorted(options):
        result.dropped.append(
            f"{TOOL}: label {PREFIX}options.{key} on {container} dropped: not a deck-chores option"
        )
    project, service = labels.get(PROJECT_LABEL), labels.get(SERVICE_LABEL)
    if "service" in flags and project and service:
        target: dict[str, Any] = {
            "selector": {PROJECT_LABEL: project, SERVICE_LABEL: service},
            "pick": "one",
        }
        scope = service_scope or f"{project}.{service}"
    else:
        target = {"container": container}
        scope = container
    jobs: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    for key, value in sorted(labels.items()):
        if not key.startswith(PREFIX) or key.startswith(PREFIX + "options."):
            continue
        original, _, attribute = key[len(PREFIX) :].partition(".")
        attributes, environment = jobs.setdefault(original, ({}, {}))
        if attribute.startswith("env."):
            environment[attribute[len("env.") :]] = value
        elif attribute:
            attributes[attribute] = value
    for original, (attributes, environment) in jobs.items():
        name = normalise_name(f"{scope}.{original}")
        try:
            data = _job(
                original, name, attributes, environment, target, default_user, result.dropped
            )
        except Refused as error:
            result.dropped.append(f'{TOOL}: job "{original}" on {container} refused: {error}')
            continue
        result.jobs.append(Translated(name=name, mapping=data, original=original))
    return result


def _labels(value: object, service: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, list):
        result = {}
        for item in value:
            key, _, text = str(item).partition("=")
            result[key] = text
        return result
    if isinstance(value, dict):
        return {str(k): "" if v is None else _text(v) for k, v in value.items()}
    raise ComposeError(f"services.{service}.labels is neither a mapping nor a list")


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def translate_compose(text: str, project: str) -> Translation:
    """The deck-chores labels of every service in a compose file (`project`: compose's
    project name, the file's `name:` or its folder's name). Raises ComposeError."""
    try:
        documents = load_all(text)
    except Exception as error:  # the YAML reader's own errors name line and column
        raise ComposeError(f"not YAML: {' '.join(str(error).split())}") from None
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise ComposeError("not a compose file (one mapping with `services:`)")
    document = documents[0]
    services = document.get("services")
    if not isinstance(services, dict):
        raise ComposeError("has no `services:` mapping")
    project = str(document.get("name") or project)
    result = Translation()
    for service, definition in services.items():
        if not isinstance(definition, dict):
            raise ComposeError(f"services.{service} is not a mapping")
        labels = _labels(definition.get("labels"), str(service))
        if not any(key.startswith(PREFIX) for key in labels):
            continue
        labels.setdefault(PROJECT_LABEL, project)
        labels.setdefault(SERVICE_LABEL, str(service))
        container = str(definition.get("container_name") or f"{project}-{service}-1")
        result.extend(translate_deck_chores_labels(container, labels, service_scope=str(service)))
    return result

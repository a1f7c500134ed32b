"""Ofelia's jobs (INI file or `ofelia.*` container labels) as our job mappings.

Meanings carried over (Ofelia's docs/jobs.md and README): `job-exec` runs in a running
container (an exec job), `job-run` and `job-service-run` in a new container from `image`,
`user` defaults to root, jobs may overlap unless `no-overlap` (our default forbids it, so
`concurrency` is always written), a label `job-exec` targets the labelled container and is
named `<container>.<job>` so two projects' jobs of one name never collide. `job-local`
runs commands on the scheduler's host: refused here.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Mapping
from typing import Any

from orchestrator.spec.dropin.common import (
    Refused,
    Translated,
    Translation,
    described,
    normalise_name,
    truthy,
)
from orchestrator.spec.dropin.schedules import go_duration, ofelia_schedule, whole_seconds

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def url_quote(text: str, safe: str = "") -> str:
    """Percent-encode as urllib.parse.quote does (urllib is outside the pure core)."""
    keep = _UNRESERVED | frozenset(safe)
    return "".join(
        char if char in keep else "".join(f"%{byte:02X}" for byte in char.encode()) for char in text
    )


TOOL = "ofelia"
KINDS = ("job-exec", "job-run", "job-service-run", "job-local")
_SECTION = re.compile(r'\[\s*(?P<kind>[A-Za-z0-9_-]+)\s*(?:"(?P<name>(?:[^"\\]|\\.)*)")?\s*\]')
_LIST_KEYS = ("environment", "volume", "volumes-from", "on-success", "on-failure", "depends-on")
# Options with nothing to say here: their meaning is ours already or only Ofelia's logs.
_SAME = {"tty": "false", "delete": "true"}
_UNSUPPORTED = {
    "hostname": "the container's hostname is not set here",
    "volumes-from": "volumes of another container are not mounted here",
    "depends-on": "a job waiting for another's success before it runs has no equivalent "
    "(chain it instead: on_success on the other job)",
    "tty": "jobs get no pseudo-terminal here",
    "delete": "containers of finished runs are always removed here (output is kept)",
    "dir": "job-local only",
}
_ERROR_EVENTS = ["failed", "timed_out", "lost"]
_ALL_EVENTS = ["succeeded", *_ERROR_EVENTS]


class IniError(ValueError):
    """A line of the INI file that cannot be read: the message names it."""


def _unquote(raw: str, line: int) -> str:
    """A gcfg value: `;`/`#` start a comment outside quotes, `\\"` `\\\\` `\\n` `\\t` escapes."""
    out: list[str] = []
    quoted = False
    index = 0
    while index < len(raw):
        char = raw[index]
        if char == "\\":
            index += 1
            if index >= len(raw):
                raise IniError(f"line {line}: a value ends in a lone backslash")
            out.append({"n": "\n", "t": "\t", "b": "\b"}.get(raw[index], raw[index]))
        elif char == '"':
            quoted = not quoted
        elif char in ";#" and not quoted:
            break
        else:
            out.append(char)
        index += 1
    if quoted:
        raise IniError(f"line {line}: a quote is not closed")
    return "".join(out).strip()


def parse_ini(text: str) -> list[tuple[str, str | None, dict[str, list[str]]]]:
    """(section kind, section name, key -> values) in file order; keys lower-cased."""
    sections: list[tuple[str, str | None, dict[str, list[str]]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped[0] in ";#":
            continue
        if stripped.startswith("["):
            match = _SECTION.fullmatch(stripped.split("]", 1)[0] + "]")
            if match is None:
                raise IniError(f'line {number}: {stripped!r} is not a [section "name"] line')
            name = match["name"]
            if name is not None:
                name = re.sub(r"\\(.)", r"\1", name)
            sections.append((match["kind"].lower(), name, {}))
            continue
        key, equals, value = stripped.partition("=")
        key = key.strip().lower()
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", key):
            raise IniError(f"line {number}: {stripped!r} is not a key = value line")
        if not sections:
            raise IniError(f"line {number}: {key!r} comes before any [section]")
        # gcfg: a key without "=" is a boolean true.
        sections[-1][2].setdefault(key, []).append(_unquote(value, number) if equals else "true")
    return sections


def _argv(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as error:
        raise Refused(f"command {text!r} cannot be split into words: {error}") from None


def _values(options: Mapping[str, list[str]], key: str) -> list[str]:
    result: list[str] = []
    for value in options.get(key, []):
        if value.startswith("["):
            try:
                items = json.loads(value)
            except ValueError:
                items = None
            if isinstance(items, list) and all(isinstance(i, str) for i in items):
                result.extend(items)
                continue
        result.extend(part.strip() for part in value.split(",") if part.strip()) if key.startswith(
            ("on-", "depends")
        ) else result.append(value)
    return result


class _Job:
    """One Ofelia job being translated; collects what it drops."""

    def __init__(self, kind: str, original: str, name: str, dropped: list[str]) -> None:
        self.kind, self.original, self.name = kind, original, name
        self.dropped = dropped
        self.where = f'{TOOL}: {kind} "{original}"'

    def drop(self, key: str, why: str) -> None:
        self.dropped.append(f"{self.where}: {key} dropped: {why}")


def _translate(
    kind: str,
    original: str,
    name: str,
    options: Mapping[str, list[str]],
    dropped: list[str],
    chain_name: Any,
) -> dict[str, Any]:
    job = _Job(kind, original, name, dropped)
    single = {key: values[-1] for key, values in options.items()}
    data: dict[str, Any] = {"name": name, "description": described(TOOL, kind, original)}
    if "schedule" not in single:
        raise Refused("schedule is required")
    schedule, timezone = ofelia_schedule(single["schedule"])
    data["schedule"] = schedule
    if timezone:
        data["timezone"] = timezone
    if kind == "job-exec":
        data["kind"] = "exec"
        if not single.get("container"):
            raise Refused("container is required")
        data["container"] = single["container"]
        if not single.get("command"):
            raise Refused("command is required")
    else:
        if not single.get("image"):
            raise Refused(
                "starting an existing stopped container (job-run without image) is not a job "
                "here: give the image to run"
            )
        data["image"] = single["image"]
        if "pull" in single:
            data["pull"] = "always" if truthy(single["pull"]) else "missing"
        elif kind == "job-run":
            data["pull"] = "always"  # Ofelia's pull defaults to true
        if kind == "job-service-run":
            job.drop("(swarm service)", "run as a container on this engine (see `backend: swarm`)")
        if single.get("network"):
            data["network"] = single["network"]
        volumes = _values(options, "volume")
        if volumes:
            data["volumes"] = volumes
    if single.get("command"):
        data["command"] = _argv(single["command"])
    data["user"] = single.get("user") or "root"  # Ofelia's default, not the image's
    environment: dict[str, str] = {}
    for item in _values(options, "environment"):
        key, equals, value = item.partition("=")
        if not equals:
            job.drop(f"environment {key}", "a variable without a value (passed through by Docker)")
            continue
        environment[key] = value
    if environment:
        data["environment"] = environment
    if single.get("working-dir") or single.get("workdir"):
        data["working_dir"] = single.get("working-dir") or single.get("workdir")
    data["concurrency"] = "forbid" if truthy(single.get("no-overlap", "false")) else "allow"
    if single.get("max-runtime"):
        data["timeout"] = whole_seconds(go_duration(single["max-runtime"]), round_up=True)
    if single.get("history-limit"):
        if not single["history-limit"].isdigit():
            raise Refused(f"history-limit {single['history-limit']!r} is not a number")
        data["history"] = {"keep": int(single["history-limit"])}
    if truthy(single.get("run-on-startup", "false")):
        data["run_on_start"] = True
    for ours, theirs in (("on_success", "on-success"), ("on_failure", "on-failure")):
        targets = _values(options, theirs)
        if targets:
            data[ours] = [chain_name(target) for target in targets]
    handled = {
        "schedule",
        "container",
        "command",
        "image",
        "pull",
        "network",
        "volume",
        "user",
        "environment",
        "working-dir",
        "workdir",
        "no-overlap",
        "max-runtime",
        "history-limit",
        "run-on-startup",
        "on-success",
        "on-failure",
    }
    for key in sorted(set(options) - handled):
        if _SAME.get(key) == single[key].strip().lower():
            continue
        job.drop(key, _UNSUPPORTED.get(key, "not an Ofelia option we know"))
    return data


def _one(
    kind: str,
    original: str,
    name: str,
    options: Mapping[str, list[str]],
    chain_name: Any,
    notify: list[dict[str, Any]],
) -> Translation:
    result = Translation()
    where = f'{TOOL}: {kind} "{original}"'
    if kind == "job-local":
        result.dropped.append(
            f"{where}: refused: job-local runs commands on the scheduler's host, which is "
            "never done here (use a job-run with an image)"
        )
        return result
    if kind not in KINDS:
        result.dropped.append(f"{where}: refused: not an Ofelia job kind ({', '.join(KINDS)})")
        return result
    try:
        data = _translate(kind, original, name, options, result.dropped, chain_name)
    except Refused as error:
        result.dropped.append(f"{where}: refused: {error}")
        return result
    if notify:
        data["notify"] = copy.deepcopy(notify)
    result.jobs.append(Translated(name=name, mapping=data, original=original))
    return result


def _global_notify(options: Mapping[str, list[str]], dropped: list[str]) -> list[dict[str, Any]]:
    """Ofelia's [global] mail and slack loggers as our notify receivers (secrets by name)."""
    single = {key: values[-1] for key, values in options.items()}
    notify: list[dict[str, Any]] = []
    used: set[str] = set()
    if single.get("slack-webhook"):
        used |= {"slack-webhook", "slack-only-on-error"}
        on = _ERROR_EVENTS if truthy(single.get("slack-only-on-error", "false")) else _ALL_EVENTS
        notify.append({"apprise": "slack://{{secret:slack_tokens}}", "on": on})
        dropped.append(
            f"{TOOL}: [global] slack-webhook: not written into the job (it is a secret): put "
            "its three tokens as TokenA/TokenB/TokenC in the secret file slack_tokens"
        )
    if single.get("smtp-host") and single.get("email-to"):
        used |= {"smtp-host", "smtp-port", "smtp-user", "smtp-password", "email-to"}
        used |= {"email-from", "mail-only-on-error", "smtp-tls-skip-verify"}
        user = single.get("smtp-user", "")
        auth = ""
        if user:
            auth = (
                url_quote(user, safe="")
                + (":{{secret:smtp_password}}" if "smtp-password" in single else "")
                + "@"
            )
        port = f":{single['smtp-port']}" if single.get("smtp-port") else ""
        query = f"to={url_quote(single['email-to'], safe='@,')}"
        if single.get("email-from"):
            query += f"&from={url_quote(single['email-from'], safe='@')}"
        if truthy(single.get("smtp-tls-skip-verify", "false")):
            query += "&verify=no"
        on = _ERROR_EVENTS if truthy(single.get("mail-only-on-error", "false")) else _ALL_EVENTS
        notify.append({"apprise": f"mailto://{auth}{single['smtp-host']}{port}?{query}", "on": on})
        if "smtp-password" in single:
            dropped.append(
                f"{TOOL}: [global] smtp-password: not written into the job (it is a secret): "
                "put it in the secret file smtp_password"
            )
    for key in sorted(set(single) - used):
        why = {
            "save-folder": "run reports are kept in our database (`runs show`, `runs logs`)",
            "save-only-on-error": "run reports are kept in our database",
        }.get(key, "no equivalent here")
        dropped.append(f"{TOOL}: [global] {key} dropped: {why}")
    return notify


def translate_ofelia_ini(text: str) -> Translation:
    """Every section of an Ofelia INI file. Raises IniError for an unreadable file."""
    result = Translation()
    sections = parse_ini(text)
    notify: list[dict[str, Any]] = []
    for kind, _, options in sections:
        if kind == "global":
            notify = _global_notify(options, result.dropped)
    names = {original: normalise_name(original) for _, original, _ in sections if original}
    for kind, original, options in sections:
        if kind == "global":
            continue
        if kind in ("docker",):
            result.dropped.append(
                f"{TOOL}: [{kind}] dropped: label discovery is our setting "
                "ORCHESTRATOR_LABEL_PREFIXES"
            )
            continue
        if original is None:
            result.dropped.append(f'{TOOL}: [{kind}] refused: a job section needs a "name"')
            continue
        result.extend(
            _one(
                kind,
                original,
                names[original],
                options,
                lambda target: names.get(target, normalise_name(target)),
                notify,
            )
        )
    return result


def translate_ofelia_labels(container: str, labels: Mapping[str, str]) -> Translation:
    """The `ofelia.*` labels of one container (only if `ofelia.enabled=true`).

    A `job-exec` runs in this container unless it names another; `job-run` and
    `job-service-run` are read, as by Ofelia, only from a container labelled
    `ofelia.service=true`. Job names are `<container>.<job>` for exec jobs (Ofelia scopes
    them so), the job's own name otherwise.
    """
    result = Translation()
    if not truthy(labels.get("ofelia.enabled", "false")):
        return result
    service = truthy(labels.get("ofelia.service", "false"))
    jobs: dict[tuple[str, str], dict[str, list[str]]] = {}
    for key, value in sorted(labels.items()):
        parts = key.split(".", 3)
        if parts[0] != TOOL or key in ("ofelia.enabled", "ofelia.service"):
            continue
        if len(parts) < 4:
            result.dropped.append(
                f"{TOOL}: label {key} on {container} dropped: global options are our "
                "settings (ORCHESTRATOR_NOTIFY, ...)"
            )
            continue
        _, kind, original, option = parts
        jobs.setdefault((kind.lower(), original), {}).setdefault(option.lower(), []).append(value)

    def scoped(kind: str, original: str) -> str:
        return normalise_name(f"{container}.{original}" if kind == "job-exec" else original)

    exec_names = {original for kind, original in jobs if kind == "job-exec"}
    for (kind, original), options in jobs.items():
        if kind in ("job-run", "job-service-run") and not service:
            result.dropped.append(
                f'{TOOL}: {kind} "{original}" on {container} dropped: Ofelia reads it only '
                "from its own container (label ofelia.service=true)"
            )
            continue
        if kind == "job-exec":
            options.setdefault("container", [container])
        result.extend(
            _one(
                kind,
                original,
                scoped(kind, original),
                options,
                lambda target: scoped("job-exec" if target in exec_names else "", target),
                [],
            )
        )
    return result

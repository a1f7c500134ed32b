"""Which events of a run are told to whom, with what body. Pure.

A run's end is the event of its status; with retries, `failed`, `timed_out` and `lost`
are told for the final attempt only (a run that will be tried again has not failed
yet); `recovered` is a success whose job's previous fire ended in a final failure.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.policies.retries import plan_retry
from orchestrator.records import NewNotification, RunRecord, RunStatus
from orchestrator.shapes import run_summary
from orchestrator.spec import JobSpec

FAILURES = (RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.LOST)
StartedEvents = Callable[[RunRecord], list[NewNotification]]
EndEvents = Callable[[RunRecord, RunStatus | None], list[NewNotification]]
OUTPUT_TAIL_LINES = 20
# Backoff between attempts: from one second, doubling, at most five minutes.
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 300.0


def end_events(spec: JobSpec, run: RunRecord, previous: RunStatus | None) -> list[str]:
    """The events a finished run raises."""
    if not run.status.finished:
        return []
    if run.status in FAILURES and plan_retry(run, spec, run.finished_at or run.created_at):
        return []  # it will be tried again: not a failure yet
    events = [run.status.value]
    if run.status is RunStatus.SUCCEEDED and previous in FAILURES:
        events.append("recovered")
    return events


def payload(run: RunRecord, event: str) -> dict[str, Any]:
    """The webhook body: the run's JSON (without its output), the event, and the last
    lines of its output."""
    lines = (run.output or "").splitlines()[-OUTPUT_TAIL_LINES:]
    return {**run_summary(run), "event": event, "output_tail": lines}


# The ping URL's suffix for each event that pings: the healthchecks.io convention.
PING_SUFFIX = {
    "started": "/start",
    "succeeded": "",
    "failed": "/fail",
    "timed_out": "/fail",
    "lost": "/fail",
}


def with_link(payload: Mapping[str, Any], public_url: str | None) -> dict[str, Any]:
    """The payload with `url`, the run's page, when the service's public URL is set."""
    linked = dict(payload)
    if public_url and payload.get("id"):
        linked["url"] = f"{public_url.rstrip('/')}/runs/{payload['id']}"
    return linked


def message(payload: Mapping[str, Any]) -> tuple[str, str]:
    """An Apprise notification's title and body: short, for chat and e-mail."""
    job, event = payload.get("job", "?"), payload.get("event", "?")
    run = payload.get("id")
    title = f"{job}: run {run} {event}" if run else f"{job}: {event}"
    lines = []
    if run:
        code = payload.get("exit_code")
        how = f" (exit code {code})" if code is not None else ""
        due = payload.get("scheduled_for")
        lines.append(f"Run {run} of {job} {event}{how}, scheduled for {due}.")
    else:
        lines.append(f"A {event} notification of {job}.")
    if payload.get("error"):
        lines.append(f"Why: {payload['error']}")
    tail = payload.get("output_tail") or []
    if tail:
        lines += ["", "Last lines of output:", *tail]
    if payload.get("url"):
        lines += ["", str(payload["url"])]
    return title, "\n".join(lines)


def notifications(spec: JobSpec, run: RunRecord, events: list[str]) -> list[NewNotification]:
    """One notification per receiver of the job that listens to each event, and the
    job's dead-man ping for start, success and final failure."""
    pings = [
        NewNotification(
            run_id=run.id,
            job=run.job,
            event=event,
            url=spec.ping.rstrip("/") + PING_SUFFIX[event],
            payload={"id": run.id, "job": run.job, "event": event},
            method="GET",
        )
        for event in events
        if spec.ping is not None and event in PING_SUFFIX
    ]
    return pings + [
        NewNotification(
            run_id=run.id,
            job=run.job,
            event=event,
            url=target.url,
            payload=payload(run, event),
            secret_name=target.secret,
            method="POST" if target.kind == "webhook" else "APPRISE",
        )
        for event in events
        for target in spec.notify
        if event in target.on
    ]


def on_end(spec: JobSpec) -> EndEvents | None:
    """What `Store.finish_run` calls in its transaction; None when no one listens."""
    if not spec.notify and spec.ping is None:
        return None
    return lambda run, previous: notifications(spec, run, end_events(spec, run, previous))


def on_start(spec: JobSpec) -> StartedEvents | None:
    """What `Store.mark_running` calls in its transaction; None when no one listens."""
    if spec.ping is None and not any("started" in target.on for target in spec.notify):
        return None
    return lambda run: notifications(spec, run, ["started"])


def signature(body: bytes, key: bytes) -> str:
    """X-Orchestrator-Signature: sha256=<hex HMAC-SHA256 of the body>."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


# Standard Webhooks (standardwebhooks.com): a secret written `whsec_<base64>` is that
# base64's bytes; any other secret file's content is the key itself.
STANDARD_SECRET_PREFIX = "whsec_"


def standard_key(secret: bytes) -> bytes:
    """The HMAC key of a secret file's (stripped) content; ValueError when a whsec_
    secret is not base64."""
    if not secret.startswith(STANDARD_SECRET_PREFIX.encode()):
        return secret
    encoded = secret[len(STANDARD_SECRET_PREFIX) :]
    try:  # (padding may be left off, as the reference libraries allow)
        return base64.b64decode(encoded + b"=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("not base64") from None


def standard_signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt, after `attempts` failed ones."""
    return float(min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS))

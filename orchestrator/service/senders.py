"""Sending one notification, and saying how it went: to a webhook, the run's JSON
POSTed (signed when the receiver has a secret, with the delivery id a receiver can drop
a repeat by); to a dead-man ping, a GET; to an Apprise URL (Slack, Teams, e-mail, ...),
a title and a short message. `{{secret:NAME}}` in a URL is filled in here, at sending,
from the secrets directory: never stored, never shown.

Each attempt runs in a guard (service/outbound.py): it connects to no address the policy
refuses (loopback, link-local, unspecified, the engine's), follows no redirect (a 3xx is
an answer that did not take it) and ends at one deadline, however slow the receiver."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator import __version__
from orchestrator.errors import UnsafeJobError
from orchestrator.policies import notify_events
from orchestrator.policies.secret_grants import (
    Identify,
    SecretPolicy,
    check_secret,
    placeholders,
)
from orchestrator.records import Notification
from orchestrator.runner.secretfiles import SecretUnavailableError, identify, read_secret
from orchestrator.service.outbound import DeliveryPolicy, Guard, guarded

# A whole attempt (connect, send, read the answer's status) takes at most this long.
REQUEST_TIMEOUT_SECONDS = 10.0
_PLACEHOLDER = "{{secret:"
# Methods in the outbox: a webhook's POST, a ping's GET, an Apprise notification.
APPRISE = "APPRISE"


class NotDeliveredError(Exception):
    """A receiver that did not take the notification, in one line."""


@dataclass(frozen=True)
class Outgoing:
    """What one attempt sends."""

    method: str
    url: str  # as written, {{secret:NAME}} placeholders and all
    event: str
    payload: Mapping[str, Any]
    delivery_id: int
    secret_name: str | None = None
    job: str = ""

    @classmethod
    def of(cls, item: Notification) -> Outgoing:
        return cls(
            item.method, item.url, item.event, item.payload, item.id, item.secret_name, item.job
        )


def attempt(
    outgoing: Outgoing,
    secrets_dir: str,
    public_url: str | None = None,
    policy: DeliveryPolicy | None = None,
    now: float | None = None,
    secret_policy: SecretPolicy | None = None,
) -> tuple[bool, dict[str, object]]:
    """Send it: (delivered, the answer to record: an HTTP status or an error line).
    Never raises for the receiver's, the network's, the policy's or a secret's failure.
    `now` (unix seconds) is the attempt's webhook-timestamp. A secret `secret_policy`
    refuses the job is not read, and nothing is sent."""
    policy = policy or DeliveryPolicy(deadline_seconds=REQUEST_TIMEOUT_SECONDS)
    with guarded(policy) as guard:
        try:
            if secret_policy is not None:
                check_notification(outgoing, secret_policy)
            status = _send(outgoing, secrets_dir, public_url, now, secret_policy)
            return 200 <= status < 300, {"status": status}
        except urllib.error.HTTPError as error:  # a 3xx (not followed), 4xx or 5xx
            error.close()
            return False, {"status": error.code}
        except (SecretUnavailableError, NotDeliveredError, UnsafeJobError) as error:
            return False, {"error": _guard_said(guard) or str(error)[:300]}
        except ValueError:  # (its message would show the URL, secrets filled in)
            return False, {"error": "the URL is not valid once its secrets are filled in"}
        except OSError as error:
            said = _guard_said(guard) or str(getattr(error, "reason", error))
            return False, {"error": said[:300]}
        except http.client.HTTPException as error:  # an answer that is not HTTP
            said = _guard_said(guard) or f"not an HTTP answer ({type(error).__name__})"
            return False, {"error": said}


def _guard_said(guard: Guard) -> str | None:
    if guard.refusal is not None:
        return guard.refusal
    if guard.expired:
        return f"no answer within {guard.policy.deadline_seconds:g} s (the delivery's deadline)"
    return None


def check_notification(outgoing: Outgoing, policy: SecretPolicy) -> None:
    """The secrets policy on what one notification would read (UnsafeJobError)."""
    for name in placeholders(outgoing.url):
        check_secret(outgoing.job, "notify url", name, policy, identify)
    if outgoing.secret_name is not None:
        check_secret(outgoing.job, "notify secret", outgoing.secret_name, policy, identify)


def _reader(
    outgoing: Outgoing, secrets_dir: str, policy: SecretPolicy | None
) -> Callable[[str, str], bytes]:
    """Reads a secret (name, field) for this notification; with `policy`, the file is
    checked as opened (runner/secretfiles.py), so a link swapped since the check is
    refused."""

    def read(name: str, field: str) -> bytes:
        if policy is None:
            return read_secret(secrets_dir, name)

        def check(opened: Identify) -> None:
            check_secret(outgoing.job, field, name, policy, opened)

        return read_secret(secrets_dir, name, check)

    return read


def resolve_url(url: str, secrets_dir: str, read: Callable[[str, str], bytes] | None = None) -> str:
    """The URL with each {{secret:NAME}} replaced by that secret file's content."""
    resolved = url
    while _PLACEHOLDER in resolved:
        start = resolved.index(_PLACEHOLDER)
        end = resolved.index("}}", start)
        name = resolved[start + len(_PLACEHOLDER) : end]
        raw = read_secret(secrets_dir, name) if read is None else read(name, "notify url")
        value = raw.decode("utf-8").strip()
        resolved = resolved[:start] + urllib.parse.quote(value, safe="") + resolved[end + 2 :]
    return resolved


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx is the answer: the delivery failed with its status (Standard Webhooks)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


def _send(
    outgoing: Outgoing,
    secrets_dir: str,
    public_url: str | None,
    now: float | None,
    secret_policy: SecretPolicy | None = None,
) -> int:
    read = _reader(outgoing, secrets_dir, secret_policy)
    url = resolve_url(outgoing.url, secrets_dir, read)
    payload = notify_events.with_link(outgoing.payload, public_url)
    if outgoing.method == APPRISE:
        return _send_apprise(url, payload)
    if outgoing.method == "GET":  # a dead-man ping: the URL says it all
        ping = urllib.request.Request(
            url, headers={"User-Agent": f"orchestrator/{__version__}"}, method="GET"
        )
        with _OPENER.open(ping, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return int(response.status)
    body = json.dumps({**payload, "delivery_id": outgoing.delivery_id}, ensure_ascii=False)
    data = body.encode()
    # webhook-id: the same for each attempt; a `notifications test` one of its own.
    message_id = str(outgoing.delivery_id) if outgoing.delivery_id else f"test_{uuid.uuid4().hex}"
    timestamp = int(time.time() if now is None else now)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"orchestrator/{__version__}",
        "X-Orchestrator-Delivery": str(outgoing.delivery_id),
        "X-Orchestrator-Event": outgoing.event,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
    }
    if outgoing.secret_name is not None:
        key = read(outgoing.secret_name, "notify secret").strip()
        headers["X-Orchestrator-Signature"] = notify_events.signature(data, key)
        try:
            signing_key = notify_events.standard_key(key)
        except ValueError:
            raise NotDeliveredError(
                f"secret {outgoing.secret_name} starts with whsec_ but the rest is not base64"
            ) from None
        headers["webhook-signature"] = notify_events.standard_signature(
            signing_key, message_id, timestamp, data
        )
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    with _OPENER.open(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
        return int(response.status)


def _send_apprise(url: str, payload: Mapping[str, Any]) -> int:
    """Through Apprise (imported here: it takes a second and a half to import), in this
    thread (not Apprise's pool), so that the guard sees its connects."""
    import apprise

    sender = apprise.Apprise(asset=apprise.AppriseAsset(async_mode=False))
    scheme = url.partition("://")[0]
    if not sender.add(url):
        raise NotDeliveredError(f"Apprise does not take this {scheme}:// URL")
    title, body = notify_events.message(payload)
    if not sender.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT):
        raise NotDeliveredError(f"Apprise could not deliver to {scheme}:// (see the log)")
    return 200

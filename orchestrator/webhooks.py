"""Sending one notification: to a webhook, the run's JSON, signed when the receiver has
a secret, with the delivery id a receiver can drop a repeat by; to a ping URL, a GET."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

from orchestrator import __version__, events
from orchestrator.records import Notification
from orchestrator.secretfiles import read_secret

REQUEST_TIMEOUT_SECONDS = 10.0
_PLACEHOLDER = "{{secret:"


def resolve_url(url: str, secrets_dir: str) -> str:
    """The URL with each {{secret:NAME}} replaced by that secret file's content."""
    resolved = url
    while _PLACEHOLDER in resolved:
        start = resolved.index(_PLACEHOLDER)
        end = resolved.index("}}", start)
        name = resolved[start + len(_PLACEHOLDER) : end]
        value = read_secret(secrets_dir, name).decode("utf-8").strip()
        resolved = resolved[:start] + urllib.parse.quote(value, safe="") + resolved[end + 2 :]
    return resolved


def send(item: Notification, secrets_dir: str) -> int:
    """POST the notification (GET for a ping); the HTTP status (HTTPError for 4xx/5xx)."""
    if item.method == "GET":  # a dead-man ping: the URL says it all
        ping = urllib.request.Request(
            resolve_url(item.url, secrets_dir),
            headers={"User-Agent": f"orchestrator/{__version__}"},
            method="GET",
        )
        with urllib.request.urlopen(ping, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return int(response.status)
    body = json.dumps({**item.payload, "delivery_id": item.id}, ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"orchestrator/{__version__}",
        "X-Orchestrator-Delivery": str(item.id),
        "X-Orchestrator-Event": item.event,
    }
    if item.secret_name is not None:
        key = read_secret(secrets_dir, item.secret_name).strip()
        headers["X-Orchestrator-Signature"] = events.signature(body, key)
    request = urllib.request.Request(
        resolve_url(item.url, secrets_dir), data=body, headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
        return int(response.status)

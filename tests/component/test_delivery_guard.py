"""A job author writes the notification URL: deliveries aimed at the service's own host
(loopback under any spelling, a name that resolves to it), at cloud metadata or at the
engine are refused, a redirect is not followed, and a receiver that trickles its answer
does not hold a delivery past its deadline. Real HTTP receivers on loopback and the real
senders; Apprise's own HTTP too. A signed delivery verifies with the Standard Webhooks
reference library."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from orchestrator.policies.destinations import parse_allowed_hosts
from orchestrator.service.outbound import DeliveryPolicy
from orchestrator.service.senders import APPRISE, Outgoing, attempt

GRANT = parse_allowed_hosts(("127.0.0.1",), "ORCHESTRATOR_NOTIFY_ALLOWED_HOSTS")
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Receiver:
    """A receiver on loopback: what reached it; `redirect_to` answers 302 there,
    `trickle` sends its answer one byte every half second (about 30 s in all)."""

    def __init__(self, redirect_to: str | None = None, trickle: bool = False) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        seen = self.requests

        class Handler(BaseHTTPRequestHandler):
            def _take(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                seen.append((self.command, self.path, headers, body))
                if redirect_to is not None:
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif trickle:
                    try:
                        for byte in ANSWER:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(0.5)
                    except OSError:  # the sender hung up: what it should do
                        pass
                else:
                    self.send_response(204)
                    self.end_headers()

            do_GET = do_POST = _take

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/hook"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.stop()


def receiver(made: list[Receiver], **kwargs: Any) -> Receiver:
    found = Receiver(**kwargs)
    made.append(found)
    return found


def webhook(url: str, secret: str | None = None, method: str = "POST") -> Outgoing:
    payload = {"id": 7, "job": "nightly", "event": "failed", "output_tail": []}
    return Outgoing(method, url, "failed", payload, delivery_id=41, secret_name=secret)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",  # a name that resolves to 127.0.0.1
        "2130706433",  # 127.0.0.1 as one decimal number
        "0177.0.0.1",  # ... in octal
        "127.1",
        "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
        "0.0.0.0",
    ],
)
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_delivery_to_the_services_own_host_is_refused_without_a_grant(
    receivers: list[Receiver], tmp_path: Path, host: str, method: str
) -> None:
    target = receiver(receivers)
    delivered, said = attempt(webhook(target.url(host), method=method), str(tmp_path))
    assert not delivered and target.requests == []
    assert str(said["error"]).startswith("refused: ")
    assert "ORCHESTRATOR_NOTIFY_ALLOWED_HOSTS can allow it" in str(said["error"])


LINK_LOCAL = "a link-local address (where cloud metadata answers)"


@pytest.mark.parametrize(
    ("host", "shown", "kind"),
    [
        ("169.254.169.254", "169.254.169.254:80", LINK_LOCAL),
        ("[64:ff9b::a9fe:a9fe]", "[64:ff9b::a9fe:a9fe]:80", LINK_LOCAL),  # through NAT64
        ("[2002:a9fe:a9fe::]", "[2002:a9fe:a9fe::]:80", LINK_LOCAL),  # through 6to4
        ("[fd00:ec2::254]", "[fd00:ec2::254]:80", "a cloud metadata address"),  # AWS, IPv6
        ("100.100.100.200", "100.100.100.200:80", "a cloud metadata address"),  # Alibaba
    ],
)
def test_cloud_metadata_is_refused_before_anything_is_sent(
    tmp_path: Path, host: str, shown: str, kind: str
) -> None:
    started = time.monotonic()
    delivered, said = attempt(webhook(f"http://{host}/latest/meta-data/"), str(tmp_path))
    assert (delivered, said) == (
        False,
        {"error": f"refused: {shown} is {kind}; ORCHESTRATOR_NOTIFY_ALLOWED_HOSTS can allow it"},
    )
    assert time.monotonic() - started < 2  # refused, not timed out against a black hole


def test_the_grant_lets_a_delivery_reach_the_host_it_names(
    receivers: list[Receiver], tmp_path: Path
) -> None:
    target = receiver(receivers)
    by_name = DeliveryPolicy(parse_allowed_hosts(("localhost",), "X"))
    assert attempt(webhook(target.url("localhost")), str(tmp_path), policy=by_name) == (
        True,
        {"status": 204},
    )
    other = DeliveryPolicy(parse_allowed_hosts(("10.0.0.0/8",), "X"))
    assert not attempt(webhook(target.url()), str(tmp_path), policy=other)[0]
    assert len(target.requests) == 1


def test_the_engines_tcp_address_is_refused_even_on_a_granted_host(
    receivers: list[Receiver], tmp_path: Path
) -> None:
    engine = receiver(receivers)  # stands where DOCKER_HOST points
    policy = DeliveryPolicy(GRANT, engine_address=f"tcp://localhost:{engine.port}")
    delivered, said = attempt(webhook(engine.url()), str(tmp_path), policy=policy)
    assert not delivered and engine.requests == []
    assert said == {
        "error": f"refused: 127.0.0.1:{engine.port} is the Docker engine's address (DOCKER_HOST)"
    }


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_redirect_is_not_followed(receivers: list[Receiver], tmp_path: Path, method: str) -> None:
    inner = receiver(receivers)
    outer = receiver(receivers, redirect_to=inner.url())
    delivered, said = attempt(
        webhook(outer.url(), method=method), str(tmp_path), policy=DeliveryPolicy(GRANT)
    )
    assert (delivered, said) == (False, {"status": 302})
    assert len(outer.requests) == 1 and inner.requests == []


@pytest.mark.parametrize("kind", ["webhook", "apprise"])
def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_deadline(
    receivers: list[Receiver], tmp_path: Path, kind: str
) -> None:
    slow = receiver(receivers, trickle=True)  # its answer takes about 30 s
    outgoing = (
        webhook(slow.url())
        if kind == "webhook"
        else Outgoing(APPRISE, f"json://127.0.0.1:{slow.port}/hook", "failed", {}, 41)
    )
    if kind == "apprise":  # its first delivery in a process loads its plugins: not timed
        warm = receiver(receivers)
        warm_up = Outgoing(APPRISE, f"json://127.0.0.1:{warm.port}/hook", "failed", {}, 41)
        assert attempt(warm_up, str(tmp_path), policy=DeliveryPolicy(GRANT))[0]
    started = time.monotonic()
    delivered, said = attempt(
        outgoing, str(tmp_path), policy=DeliveryPolicy(GRANT, deadline_seconds=2)
    )
    took = time.monotonic() - started
    assert len(slow.requests) == 1  # it was reached, and answered too slowly
    assert (delivered, said) == (False, {"error": "no answer within 2 s (the delivery's deadline)"})
    assert 1.9 <= took < 10, took  # far below the trickle's 30 s, whatever the host's load


def test_apprise_to_the_services_own_host_is_refused_without_a_grant(
    receivers: list[Receiver], tmp_path: Path
) -> None:
    target = receiver(receivers)
    for url in (f"json://localhost:{target.port}/hook", f"form://127.0.0.1:{target.port}/"):
        delivered, said = attempt(Outgoing(APPRISE, url, "failed", {}, 41), str(tmp_path))
        assert (delivered, said) == (
            False,
            {
                "error": f"refused: 127.0.0.1:{target.port} is a loopback address; "
                "ORCHESTRATOR_NOTIFY_ALLOWED_HOSTS can allow it"
            },
        )
    assert target.requests == []
    granted = Outgoing(APPRISE, f"json://127.0.0.1:{target.port}/hook", "failed", {}, 41)
    assert attempt(granted, str(tmp_path), policy=DeliveryPolicy(GRANT))[0]
    assert len(target.requests) == 1


@pytest.mark.parametrize(
    "secret",
    ["whsec_" + base64.b64encode(b"k" * 32).decode(), "a-plain-secret-of-the-old-kind"],
)
def test_a_signed_delivery_verifies_with_the_standard_webhooks_library(
    receivers: list[Receiver], tmp_path: Path, secret: str
) -> None:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    (tmp_path / "hook_key").write_text(secret + "\n")
    target = receiver(receivers)
    delivered, _ = attempt(
        webhook(target.url(), secret="hook_key"), str(tmp_path), policy=DeliveryPolicy(GRANT)
    )
    assert delivered
    ((_, _, headers, body),) = target.requests
    # What a receiver writes: the whsec_ secret as given, any other secret as its bytes.
    verifier = Webhook(secret if secret.startswith("whsec_") else secret.encode())
    assert verifier.verify(body, headers)["job"] == "nightly"
    assert (
        headers["webhook-id"] == "41" and abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    )
    tampered = json.dumps({**json.loads(body), "event": "succeeded"}).encode()
    with pytest.raises(WebhookVerificationError):
        verifier.verify(tampered, headers)
    replayed = {**headers, "webhook-timestamp": str(int(time.time()) - 3600)}
    with pytest.raises(WebhookVerificationError):
        verifier.verify(body, replayed)  # an old delivery sent again is refused


def test_malformed_allowed_hosts_stop_every_command(tmp_path: Path) -> None:
    from tests.conftest import Cli

    for entry in ("http://hooks.internal", "10.0.0.0/33", "bad host", "*.internal"):
        cli = Cli(
            f"sqlite:///{tmp_path / 'x.db'}",
            env={"ORCHESTRATOR_NOTIFY_ALLOWED_HOSTS": f"127.0.0.1,{entry}"},
        )
        result = cli("jobs", "list", expect=2)
        assert result.stderr.strip() == (
            f"ORCHESTRATOR_NOTIFY_ALLOWED_HOSTS: {entry!r} is not a host name, an IP address "
            "or a CIDR (like 127.0.0.1, localhost or 10.0.0.0/8)"
        )

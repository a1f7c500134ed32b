"""Notifications reach a real local HTTP receiver: signed, one per event and receiver, at
least once: a receiver that is down gets them when it is back, a scheduler SIGKILLed
with deliveries pending leaves them to the next, and fires do not wait meanwhile."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from orchestrator.records import DeliveryStatus, RunStatus, RunTrigger
from orchestrator.store.database import Database
from orchestrator.store.facade import Store
from tests.acceptance.service.conftest import all_runs, wait_for, write_jobs

KEY = b"hook-key-" + b"7" * 16
# The receivers listen on loopback, which deliveries refuse without this grant.
LOOPBACK_GRANT = {"ORCHESTRATOR_NOTIFY_ALLOWED_HOSTS": "127.0.0.1"}


class Receiver:
    """A webhook receiver on loopback; `start()` again after `stop()` on the same port."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.pinged: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        # Seconds each POST takes to answer (a slow receiver).
        self.delay = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        received, pinged, receiver = self.received, self.pinged, self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                time.sleep(receiver.delay)
                self.send_response(204)
                self.end_headers()

            def do_GET(self) -> None:  # a dead-man ping
                pinged.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.stop()


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "hook_key").write_bytes(KEY + b"\n")
    (folder / "hook_path").write_text("hook\n")
    return folder


def test_a_failed_run_is_told_signed_once_per_event(
    start_service: Any,
    database: Database,
    tmp_path: Path,
    docker_cli: Any,
    receiver: Receiver,
    secrets_dir: Path,
) -> None:
    receiver.start()
    url = receiver.url.replace("/hook", "/{{secret:hook_path}}")
    jobs = write_jobs(
        tmp_path,
        f"""
- name: breaks
  schedule: "0 0 1 1 *"
  image: IMAGE
  command: [sh, -c, "echo about to fail; exit 3"]
  ping: "http://127.0.0.1:{receiver.port}/ping/abc"
  notify:
    - webhook: "{url}"
      secret: hook_key
      on: [started, failed, succeeded]
""",
    )
    docker_cli("jobs", "apply", str(jobs))
    start_service(
        env={
            "ORCHESTRATOR_SECRETS_DIR": str(secrets_dir),
            "ORCHESTRATOR_PUBLIC_URL": "https://cron.example.org/",
            **LOOPBACK_GRANT,
        }
    )
    wait_for(lambda: (tmp_path / "health.json").exists(), 30, "the service to start")
    run_id = int(docker_cli("jobs", "run", "breaks", "--detach").stdout.split()[2])
    wait_for(lambda: len(receiver.received) >= 2, 30, "two notifications")
    time.sleep(1.5)  # nothing more comes: one per event
    assert [event["event"] for event in receiver.events()] == ["started", "failed"]
    wait_for(lambda: len(receiver.pinged) >= 2, 10, "the pings")
    assert receiver.pinged == ["/ping/abc/start", "/ping/abc/fail"]
    for headers, body in receiver.received:
        expected = "sha256=" + hmac.new(KEY, body, hashlib.sha256).hexdigest()
        assert headers["x-orchestrator-signature"] == expected
        assert headers["content-type"] == "application/json"
        assert headers["x-orchestrator-delivery"] == str(json.loads(body)["delivery_id"])
    failed = receiver.events()[1]
    assert failed["id"] == run_id and failed["job"] == "breaks" and failed["status"] == "failed"
    assert failed["exit_code"] == 3 and failed["output_tail"] == ["about to fail"]
    assert failed["url"] == f"https://cron.example.org/runs/{run_id}"
    assert "output" not in failed and str(secrets_dir) not in json.dumps(failed)
    listed = json.loads(docker_cli("notifications", "list", "--job", "breaks", "--json").stdout)
    assert {(item["event"], item["status"], item["attempts"]) for item in listed} == {
        ("started", "delivered", 1),
        ("failed", "delivered", 1),
    }
    hooks = [item for item in listed if "/ping/" not in item["url"]]
    assert len(hooks) == 2 and all("{{secret:hook_path}}" in item["url"] for item in hooks)
    shown = docker_cli("runs", "show", str(run_id)).stdout
    assert "--- notifications ---" in shown and "failed -> http://127.0.0.1" in shown
    assert "delivered (1 attempt(s), last: HTTP 204)" in shown
    docker_cli.env.update(LOOPBACK_GRANT)
    tested = docker_cli("--secrets-dir", str(secrets_dir), "notifications", "test", "breaks").stdout
    assert "HTTP 204" in tested and receiver.events()[-1]["event"] == "test"


@pytest.mark.parametrize("empty_database_url", ["sqlite"], indirect=True)
def test_a_receiver_down_then_a_sigkilled_scheduler_still_deliver_it(
    start_service: Any,
    database: Database,
    tmp_path: Path,
    docker_cli: Any,
    receiver: Receiver,
    secrets_dir: Path,
) -> None:
    jobs = write_jobs(
        tmp_path,
        f"""
- name: breaks
  schedule: "0 0 1 1 *"
  image: IMAGE
  command: [sh, -c, "exit 5"]
  notify: [{{webhook: "{receiver.url}"}}]
- {{name: tick, schedule: "@every 2s", image: IMAGE, command: ["true"], concurrency: allow}}
""",
    )
    docker_cli("jobs", "apply", str(jobs))
    first = start_service(env={"ORCHESTRATOR_SECRETS_DIR": str(secrets_dir), **LOOPBACK_GRANT})
    wait_for(lambda: (tmp_path / "health.json").exists(), 30, "the service to start")
    went_down = time.monotonic()
    run_id = int(docker_cli("jobs", "run", "breaks", "--detach").stdout.split()[2])
    store = Store(database)

    def attempts() -> int:
        items = store.notifications(job="breaks")
        return items[0].attempts if items else 0

    wait_for(lambda: attempts() >= 2, 30, "attempts against the receiver that is down")
    # The receiver stays down for 20 s while the scheduler keeps firing; then the
    # scheduler dies with the delivery still pending, and the receiver comes back.
    time.sleep(max(0.0, 20 - (time.monotonic() - went_down)))
    assert store.notifications(job="breaks")[0].status is DeliveryStatus.PENDING
    down_window = [
        r
        for r in all_runs(database, "tick")
        if r.status is RunStatus.SUCCEEDED and r.trigger is RunTrigger.SCHEDULE
    ]
    first.kill()
    receiver.start()
    second = start_service(env={"ORCHESTRATOR_SECRETS_DIR": str(secrets_dir), **LOOPBACK_GRANT})
    wait_for(lambda: receiver.received, 60, "the notification after the receiver came back")
    time.sleep(1)
    assert [event["event"] for event in receiver.events()] == ["failed"]
    assert receiver.events()[0]["id"] == run_id
    (item,) = store.notifications(job="breaks")
    assert item.status is DeliveryStatus.DELIVERED and item.attempts >= 3
    assert [answer.get("status") for answer in item.answers][-1] == 204
    assert "error" in item.answers[0]  # the refused attempts are recorded, with their answer
    # Fires did not wait for the deliveries while the receiver was down.
    assert len(down_window) >= 7, [(r.id, r.scheduled_for) for r in down_window]
    late = [r for r in down_window if r.started_at and (r.started_at - r.scheduled_for).seconds > 3]
    assert late == [], [(r.id, r.started_at, r.scheduled_for) for r in late]
    assert second.terminate() == 0


@pytest.mark.parametrize("empty_database_url", ["sqlite"], indirect=True)
def test_service_wide_receivers_hear_of_jobs_that_name_none(
    start_service: Any,
    database: Database,
    tmp_path: Path,
    docker_cli: Any,
    receiver: Receiver,
) -> None:
    receiver.start()
    jobs = write_jobs(
        tmp_path,
        """
- {name: plain, schedule: "0 0 1 1 *", image: IMAGE, command: [sh, -c, "exit 4"]}
- name: own
  schedule: "0 0 1 1 *"
  image: IMAGE
  command: [sh, -c, "exit 4"]
  notify: [{webhook: "http://127.0.0.1:9/elsewhere"}]
""",
    )
    docker_cli("jobs", "apply", str(jobs))
    start_service(env={"ORCHESTRATOR_NOTIFY": f"  {receiver.url}  ", **LOOPBACK_GRANT})
    wait_for(lambda: (tmp_path / "health.json").exists(), 30, "the service to start")
    plain = int(docker_cli("jobs", "run", "plain", "--detach").stdout.split()[2])
    docker_cli("jobs", "run", "own", "--detach")
    wait_for(lambda: receiver.received, 30, "the service-wide receiver")
    wait_for(lambda: all(r.status.finished for r in all_runs(database)), 30, "both runs to end")
    time.sleep(1.5)
    assert [(e["job"], e["event"], e["id"]) for e in receiver.events()] == [
        ("plain", "failed", plain)
    ]  # the job with its own receivers is not told to the service's


def test_a_bad_service_wide_receiver_is_refused(tmp_path: Path) -> None:
    from tests.conftest import Cli

    cli = Cli(f"sqlite:///{tmp_path / 'x.db'}", env={"ORCHESTRATOR_NOTIFY": "hooks.internal"})
    result = cli("jobs", "list", expect=2)
    assert result.stderr.strip() == (
        "ORCHESTRATOR_NOTIFY: 'hooks.internal' is not an Apprise URL "
        "(like mailto://, slack://, ntfy://)"
    )
    leaky = Cli(
        f"sqlite:///{tmp_path / 'x.db'}", env={"ORCHESTRATOR_NOTIFY": "mailto://ops:pw@smtp"}
    )
    assert "a password in the URL would be stored" in leaky("jobs", "list", expect=2).stderr


class MailServer:
    """A real SMTP server on loopback (aiosmtpd) that wants a login: what it received."""

    def __init__(self, login: bytes, password: bytes) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.messages: list[tuple[str, list[str], str, bool]] = []
        messages = self.messages

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                content = envelope.content.decode("utf-8", "replace")
                messages.append(
                    (envelope.mail_from, envelope.rcpt_tos, content, session.authenticated)
                )
                return "250 OK"

        def authenticate(*args: Any) -> Any:
            data = args[-1]
            known = isinstance(data, LoginPassword) and (data.login, data.password) == (
                login,
                password,
            )
            return AuthResult(success=known)

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            authenticator=authenticate,
            auth_require_tls=False,
        )
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


@pytest.mark.parametrize("empty_database_url", ["sqlite"], indirect=True)
def test_apprise_sends_an_e_mail_with_the_password_from_the_secrets_directory(
    start_service: Any,
    database: Database,
    tmp_path: Path,
    docker_cli: Any,
    secrets_dir: Path,
) -> None:
    password = "s3cret/pw+x"
    (secrets_dir / "smtp_password").write_text(password + "\n")
    mail = MailServer(b"ops", password.encode())
    try:
        url = (
            f"mailto://ops:{{{{secret:smtp_password}}}}@127.0.0.1:{mail.port}"
            "?to=oncall@example.org&from=cron@example.org"
        )
        jobs = write_jobs(
            tmp_path,
            f"""
- name: mailer
  schedule: "0 0 1 1 *"
  image: IMAGE
  command: [sh, -c, "echo disk full; exit 7"]
  notify:
    - apprise: "{url}"
      on: [failed]
""",
        )
        docker_cli("jobs", "apply", str(jobs))
        start_service(
            env={
                "ORCHESTRATOR_SECRETS_DIR": str(secrets_dir),
                "ORCHESTRATOR_PUBLIC_URL": "https://cron.example.org",
                **LOOPBACK_GRANT,
            }
        )
        wait_for(lambda: (tmp_path / "health.json").exists(), 30, "the service to start")
        run_id = int(docker_cli("jobs", "run", "mailer", "--detach").stdout.split()[2])
        wait_for(lambda: mail.messages, 60, "the e-mail")
        sender, recipients, content, authenticated = mail.messages[0]
        assert (sender, recipients, authenticated) == (
            "cron@example.org",
            ["oncall@example.org"],
            True,
        )
        assert f"Subject: mailer: run {run_id} failed" in content
        assert "exit code 7" in content and "disk full" in content
        assert f"https://cron.example.org/runs/{run_id}" in content
        (item,) = Store(database).notifications(job="mailer")
        assert item.status is DeliveryStatus.DELIVERED
        assert "{{secret:smtp_password}}" in item.url and password not in item.url
        exported = docker_cli("jobs", "export").stdout
        assert "{{secret:smtp_password}}" in exported and password not in exported
        docker_cli.env.update(LOOPBACK_GRANT)
        tested = docker_cli(
            "--secrets-dir", str(secrets_dir), "notifications", "test", "mailer"
        ).stdout
        assert tested.endswith(": delivered\n") and len(mail.messages) == 2
    finally:
        mail.stop()

"""The dashboard's sign-in, sign-out and Host guards, attacked over real HTTP against
`serve --http` as a real process: forms posted from another site, guessing tokens at
speed (from one address and from many), a Host this service does not answer to (DNS
rebinding), and the cookie's Secure flag behind an https public URL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.acceptance.api.conftest import (
    WRITE_TOKEN,
    ApiService,
    sign_in,
    signin_form,
    start_api_service,
    stop_api_service,
)

PUBLIC = "cron.example.org"


def serve(folder: Path, docker_client: Any, **env: str) -> ApiService:
    return start_api_service(
        folder, f"sqlite:///{folder / 'orchestrator.db'}", uuid.uuid4().hex, env=env
    )


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[ApiService]:
    """Behind a TLS proxy: an https public URL, one more name allowed."""
    service = serve(
        tmp_path_factory.mktemp("web"),
        docker_client,
        ORCHESTRATOR_PUBLIC_URL=f"https://{PUBLIC}/",
        ORCHESTRATOR_HTTP_ALLOWED_HOSTS="orchestrator, *.internal.example",
    )
    yield service
    stop_api_service(service, docker_client)


def audit_of(service: ApiService, action: str) -> list[dict[str, Any]]:
    return [
        e for e in service.get("/api/audit", params={"limit": 200}).json() if e["action"] == action
    ]


def test_a_sign_in_posted_from_another_site_is_refused(web: ApiService) -> None:
    # Login CSRF: another site's form signs the browser in as the attacker. It has no
    # pre-session cookie of ours (SameSite=Strict) and cannot read the form's token.
    forged = requests.post(
        web.url + "/signin",
        data={"token": WRITE_TOKEN, "next": "/jobs"},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
        timeout=30,
    )
    assert forged.status_code == 403
    assert "sign-in form was refused" in forged.text and "came from elsewhere" in forged.text
    assert "orchestrator_token" not in forged.headers.get("set-cookie", "")
    # A token lifted from one browser's page does not work with another's cookie.
    token, _ = signin_form(web.url)
    _, victims = signin_form(web.url)
    stolen = requests.post(
        web.url + "/signin",
        data={"token": WRITE_TOKEN, "csrf": token},
        cookies=victims,
        allow_redirects=False,
        timeout=30,
    )
    assert stolen.status_code == 403
    # The form, as the page gives it, signs in.
    _, answer = sign_in(web.url, WRITE_TOKEN)
    assert answer.status_code == 303


def test_a_sign_out_posted_from_another_site_is_refused(web: ApiService) -> None:
    _, answer = sign_in(web.url, WRITE_TOKEN)
    assert answer.status_code == 303
    cookie = answer.cookies["orchestrator_token"]
    forged = requests.post(
        web.url + "/signout",
        cookies={"orchestrator_token": cookie},
        allow_redirects=False,
        timeout=30,
    )
    assert forged.status_code == 403 and "came from elsewhere" in forged.text
    assert "orchestrator_token" not in forged.headers.get("set-cookie", "")
    page = requests.get(web.url + "/jobs", cookies={"orchestrator_token": cookie}, timeout=30)
    form = page.text.split('action="/signout"', 1)[1]
    token = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    done = requests.post(
        web.url + "/signout",
        cookies={"orchestrator_token": cookie},
        data={"csrf": token},
        allow_redirects=False,
        timeout=30,
    )
    assert done.status_code == 303
    assert 'orchestrator_token=""' in done.headers["set-cookie"]


def test_guessing_tokens_from_one_address_is_stopped_and_audited(web: ApiService) -> None:
    guesser = {"X-Forwarded-For": "198.51.100.7"}  # as a proxy on loopback names the client
    wrong = "guess-" + uuid.uuid4().hex
    answers = [sign_in(web.url, wrong, headers=guesser)[1] for _ in range(6)]
    assert [a.status_code for a in answers] == [401] * 5 + [429]
    assert 1 <= int(answers[5].headers["Retry-After"]) <= 60
    assert "Too many failed sign-ins" in answers[5].text
    # Refused before the token is looked at: the right one does not get in either.
    assert sign_in(web.url, WRITE_TOKEN, headers=guesser)[1].status_code == 429
    # Another address is not locked out.
    other = sign_in(web.url, WRITE_TOKEN, headers={"X-Forwarded-For": "198.51.100.8"})[1]
    assert other.status_code == 303
    failed = [e for e in audit_of(web, "signin") if e["target"] == "198.51.100.7"]
    assert len(failed) == 5
    assert all(e["actor"] == "web:anonymous" for e in failed)
    assert all(e["result"].startswith("error: the token is not known") for e in failed)
    assert "refused for up to 60 s" in failed[0]["result"]  # newest first: the fifth
    assert not any(wrong in str(e) for e in web.get("/api/audit").json())
    assert [e["actor"] for e in audit_of(web, "signin") if e["target"] == "198.51.100.8"] == [
        "web:alice"
    ]


def test_guessing_from_many_addresses_is_stopped_too(tmp_path: Path, docker_client: Any) -> None:
    service = serve(tmp_path, docker_client)
    try:
        codes = [
            sign_in(
                service.url,
                "guess-" + uuid.uuid4().hex,
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
            )[1].status_code
            for i in range(1, 32)
        ]
        assert codes == [401] * 30 + [429]
        fresh = sign_in(service.url, WRITE_TOKEN, headers={"X-Forwarded-For": "192.0.2.99"})[1]
        assert fresh.status_code == 429 and "Retry-After" in fresh.headers
        # The API's bearer tokens are not behind the sign-in's limit.
        assert service.get("/api/jobs").status_code == 200
    finally:
        stop_api_service(service, docker_client)


def test_a_host_this_service_does_not_answer_to_is_refused(web: ApiService) -> None:
    # DNS rebinding: evil.example resolved to this address; the browser sends its name.
    for host in ("evil.example", "evil.example:8080", f"{PUBLIC}.evil.example", "internal.example"):
        for method, path in (("GET", "/jobs"), ("GET", "/api/jobs"), ("POST", "/signin")):
            refused = web.request(method, path, headers={"Host": host}, allow_redirects=False)
            assert refused.status_code == 421, (host, path, refused.text)
            assert "ORCHESTRATOR_HTTP_ALLOWED_HOSTS" in refused.json()["error"]
    # The names it answers to: the public URL's, the allowed ones, addresses, localhost.
    port = web.url.rsplit(":", 1)[1]
    for host in (
        PUBLIC,
        PUBLIC.upper(),
        "orchestrator:" + port,
        "a.internal.example",
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        "[::1]",
    ):
        answer = web.get("/api/jobs", headers={"Host": host})
        assert answer.status_code == 200, (host, answer.text)
    assert requests.get(web.url + "/healthz", timeout=30).status_code == 200


def test_the_cookies_are_secure_behind_an_https_public_url(web: ApiService) -> None:
    session = requests.Session()
    page = session.get(web.url + "/signin", timeout=30)
    presession = page.headers["set-cookie"].lower()
    assert "orchestrator_signin=" in presession and "; secure" in presession
    _, answer = sign_in(web.url, WRITE_TOKEN)
    cookie = answer.headers["set-cookie"].lower()
    assert "orchestrator_token=" in cookie
    assert "; secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie

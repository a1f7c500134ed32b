"""The Host check's names and the sign-in's failure limit, as policy (fast, no server;
the attacks through the real server are in tests/acceptance/api/test_web_guards.py)."""

from __future__ import annotations

import pytest

from orchestrator.api.hosts import allowed_hosts
from orchestrator.api.signin import FailureLimiter, client_key

HOSTS = allowed_hosts("https://Cron.Example.org:8443/base", ["metrics", "*.svc.example"])


@pytest.mark.parametrize(
    "header",
    [
        "cron.example.org",
        "CRON.example.org.:8443",
        "localhost:8080",
        "127.0.0.1:8080",
        "10.1.2.3",
        "[::1]:8080",
        "[2001:db8::1]",
        "metrics:8080",
        "a.b.svc.example",
    ],
)
def test_names_of_this_service_are_answered(header: str) -> None:
    assert HOSTS.allows(header)


@pytest.mark.parametrize(
    "header",
    [
        "evil.example",
        "cron.example.org.evil.example",
        "svc.example",  # *.svc.example is its subdomains only
        "xsvc.example",
        "cron.example.org:abc",
        "[::1",
        "[::1]x",
        "localhost.evil.example",
        "",
    ],
)
def test_other_names_are_not(header: str) -> None:
    assert not HOSTS.allows(header)


def test_a_star_answers_any_name() -> None:
    assert allowed_hosts(None, ["*"]).allows("anything.example")


def test_failures_are_limited_per_client_and_overall_within_the_window() -> None:
    now = [0.0]
    limiter = FailureLimiter(per_client=2, overall=3, window=60, clock=lambda: now[0])
    assert limiter.failed("a") is False
    assert limiter.failed("a") is True
    assert limiter.retry_after("a") == 60 and limiter.retry_after("b") is None
    assert limiter.failed("b") is True  # the third failure overall
    assert limiter.retry_after("c") == 60
    now[0] = 30.0
    assert limiter.retry_after("c") == 30
    now[0] = 60.0  # the first two have left the window
    assert limiter.retry_after("a") is None and limiter.retry_after("c") is None


def test_an_ipv6_client_is_counted_by_its_64() -> None:
    assert client_key("2001:db8:1:2::5") == client_key("2001:db8:1:2:ffff::1")
    assert client_key("2001:db8:1:3::5") != client_key("2001:db8:1:2::5")
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key(None) == "unknown"

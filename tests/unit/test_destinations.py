"""Which addresses a delivery refuses without a grant, how the grant is read, and the
Standard Webhooks signature against the reference library's published vector."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from orchestrator.errors import InvalidInputError
from orchestrator.policies import notify_events
from orchestrator.policies.destinations import parse_allowed_hosts, why_refused


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("::127.0.0.1", "a loopback address"),
        ("169.254.169.254", "a link-local address (where cloud metadata answers)"),
        ("::ffff:169.254.169.254", "a link-local address (where cloud metadata answers)"),
        ("fe80::1%eth0", "a link-local address (where cloud metadata answers)"),
        # metadata outside 169.254.0.0/16: AWS's IMDS over IPv6, Alibaba Cloud's
        ("fd00:ec2::254", "a cloud metadata address"),
        ("fd00:ec2::254%eth0", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        # IPv4 inside NAT64 (a gateway forwards it to the IPv4) and 6to4 (a relay does)
        ("64:ff9b::a9fe:a9fe", "a link-local address (where cloud metadata answers)"),
        ("64:ff9b::7f00:1", "a loopback address"),
        ("64:ff9b::6464:64c8", "a cloud metadata address"),
        ("2002:a9fe:a9fe::", "a link-local address (where cloud metadata answers)"),
        ("2002:7f00:1::1", "a loopback address"),
        ("2002:6464:64c8:1::1", "a cloud metadata address"),
        ("0.0.0.0", "an unspecified address"),
        ("0.1.2.3", "an unspecified address"),
        ("::", "an unspecified address"),
        ("10.1.2.3", None),
        ("192.168.1.10", None),
        ("93.184.216.34", None),
        ("2001:db8::1", None),
        ("64:ff9b::5db8:d822", None),  # a public address through NAT64
        ("2002:5db8:d822::1", None),
        ("100.100.100.201", None),
    ],
)
def test_what_is_refused_without_a_grant(address: str, kind: str | None) -> None:
    assert why_refused(ip_address(address)) == kind


def test_the_grant_takes_hosts_addresses_and_networks() -> None:
    allowed = parse_allowed_hosts(
        ("127.0.0.1", "localhost", "Hooks.Internal.", "10.0.0.0/8", "[::1]", "fd00::/8"), "X"
    )
    assert allowed.names == ("localhost", "hooks.internal")
    assert allowed.covers(ip_address("127.0.0.1"))
    assert allowed.covers(ip_address("::ffff:127.0.0.1"))
    assert allowed.covers(ip_address("10.9.9.9")) and allowed.covers(ip_address("::1"))
    assert not allowed.covers(ip_address("127.0.0.2"))
    assert not allowed.covers(ip_address("169.254.169.254"))


def test_the_grant_covers_a_metadata_address_under_every_spelling() -> None:
    metadata = parse_allowed_hosts(("169.254.169.254", "100.100.100.200", "fd00:ec2::254"), "X")
    for spelling in (
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::",
        "::ffff:100.100.100.200",
        "64:ff9b::6464:64c8",
        "fd00:ec2::254%eth0",
    ):
        assert metadata.covers(ip_address(spelling)), spelling
    assert not metadata.covers(ip_address("64:ff9b::7f00:1"))
    # a network named in IPv6 still covers the addresses written in it
    relays = parse_allowed_hosts(("2002::/16", "64:ff9b::/96"), "X")
    assert relays.covers(ip_address("2002:a9fe:a9fe::"))
    assert relays.covers(ip_address("64:ff9b::a9fe:a9fe"))
    assert not relays.covers(ip_address("169.254.169.254"))


@pytest.mark.parametrize("entry", ["http://x", "10.0.0.0/33", "a b", "*.x", "x:80", "-x", ""])
def test_a_malformed_grant_is_refused_naming_the_entry(entry: str) -> None:
    with pytest.raises(InvalidInputError, match=r"^X: .* is not a host name"):
        parse_allowed_hosts((entry,), "X")


def test_the_signature_is_the_standard_webhooks_one() -> None:
    # The published test vector of the reference libraries (test_sign_function).
    key = notify_events.standard_key(b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signed = notify_events.standard_signature(
        key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert signed == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_secret_without_the_prefix_is_the_key_itself() -> None:
    assert notify_events.standard_key(b"plain key") == b"plain key"
    assert notify_events.standard_key(b"whsec_a2V5") == b"key"  # unpadded base64
    with pytest.raises(ValueError):
        notify_events.standard_key(b"whsec_not base64!")

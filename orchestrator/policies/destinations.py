"""Which addresses a notification (webhook, ping, Apprise) may be sent to. Pure.

A job author writes the URL, so without a grant a delivery refuses the addresses that
reach the service's own host or its cloud: loopback (127.0.0.0/8, ::1), link-local
(169.254.0.0/16, where cloud metadata answers, and fe80::/10), the cloud metadata
services found elsewhere (AWS's fd00:ec2::254, Alibaba's 100.100.100.200) and
unspecified (0.0.0.0/8, ::). IPv4 written inside IPv6 counts as the IPv4 address:
mapped (::ffff:127.0.0.1), compatible (::127.0.0.1), NAT64 (64:ff9b::a9fe:a9fe, which a
NAT64 gateway forwards to 169.254.169.254) and 6to4 (2002:a9fe:a9fe::). The check
is made on the address connected to (service/outbound.py), so a name that resolves to
127.0.0.1, or 2130706433 (127.0.0.1 as one number), is loopback all the same.
`ORCHESTRATOR_NOTIFY_ALLOWED_HOSTS` lifts the refusal for the hosts and networks it names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from orchestrator.errors import InvalidInputError, quote

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

_THIS_NETWORK = ip_network("0.0.0.0/8")
_IPV4_COMPATIBLE = ip_network("::/96")
_NAT64 = ip_network("64:ff9b::/96")  # RFC 6052's well-known prefix: the IPv4 is the last 32 bits
# As (version, number): a zone written after the address (%eth0) must not hide it.
_CLOUD_METADATA = frozenset(
    (a.version, int(a)) for a in (ip_address("fd00:ec2::254"), ip_address("100.100.100.200"))
)
_HOST_NAME = re.compile(
    r"(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?"
)


@dataclass(frozen=True)
class AllowedHosts:
    """The grant: networks (an address is a /32 or /128) and host names, whose
    addresses are looked up when a delivery connects."""

    networks: tuple[Network, ...] = ()
    names: tuple[str, ...] = ()

    def covers(self, address: Address) -> bool:
        """Whether a network named covers the address, as written or as the IPv4 within."""
        forms = {address, unmapped(address)}
        return any(a.version == net.version and a in net for a in forms for net in self.networks)


def parse_allowed_hosts(entries: tuple[str, ...], setting: str) -> AllowedHosts:
    """The grant from its comma-separated entries: host names, IP addresses or CIDRs."""
    networks: list[Network] = []
    names: list[str] = []
    for entry in entries:
        text = entry.strip().removeprefix("[").removesuffix("]")
        try:
            networks.append(ip_network(text, strict=False))
            continue
        except ValueError:
            pass
        if "/" in text or ":" in text or not _HOST_NAME.fullmatch(text):
            raise InvalidInputError(
                f"{setting}: {quote(entry)} is not a host name, an IP address or a CIDR "
                "(like 127.0.0.1, localhost or 10.0.0.0/8)"
            )
        names.append(text.lower().rstrip("."))
    return AllowedHosts(tuple(networks), tuple(names))


def unmapped(address: Address) -> Address:
    """An IPv4 address written in IPv6 (::ffff:a.b.c.d, ::a.b.c.d, NAT64's
    64:ff9b::a.b.c.d, 6to4's 2002:aabb:ccdd::) as the IPv4 one."""
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return IPv4Address(int(address) & 0xFFFFFFFF)
        if address in _IPV4_COMPATIBLE and int(address) > 1:
            return IPv4Address(int(address))
    return address


def why_refused(address: Address) -> str | None:
    """What kind of address it is, when it is refused without a grant."""
    plain = unmapped(address)
    if plain.is_loopback:
        return "a loopback address"
    if plain.is_link_local:
        return "a link-local address (where cloud metadata answers)"
    if (plain.version, int(plain)) in _CLOUD_METADATA:
        return "a cloud metadata address"
    if plain.is_unspecified or (isinstance(plain, IPv4Address) and plain in _THIS_NETWORK):
        return "an unspecified address"
    return None


def parse_address(text: str) -> Address | None:
    """An address as a socket names it ('fe80::1%eth0' too); None if it is not one."""
    try:
        return ip_address(text)
    except ValueError:
        return None

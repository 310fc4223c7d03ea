"""The client-address rule (pure): X-Forwarded-For is believed only from trusted
proxies, read from the right, and what comes back is always an address."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from controlplane.clientaddr import Network, client_address
from controlplane.settings import Settings

LOOPBACK = [ipaddress.ip_network("127.0.0.1")]
CLUSTER = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]


@pytest.mark.parametrize(
    ("peer", "headers", "trusted", "expected"),
    [
        # Nothing trusted, or a peer that is not a trusted proxy: the header is ignored.
        ("127.0.0.1", ["203.0.113.9"], [], "127.0.0.1"),
        ("198.51.100.1", ["203.0.113.9"], LOOPBACK, "198.51.100.1"),
        ("192.0.2.1", ["10.0.0.7"], CLUSTER, "192.0.2.1"),
        # A trusted peer: the right-most address that is not a trusted proxy.
        ("127.0.0.1", ["203.0.113.9"], LOOPBACK, "203.0.113.9"),
        ("127.0.0.1", ["1.1.1.1, 2.2.2.2, 198.51.100.7"], LOOPBACK, "198.51.100.7"),
        ("10.1.2.3", ["203.0.113.9, 10.0.0.5, 10.0.0.6"], CLUSTER, "203.0.113.9"),
        # Several headers are one list, in order.
        ("127.0.0.1", ["1.1.1.1", "2.2.2.2"], LOOPBACK, "2.2.2.2"),
        # Every hop trusted: the left-most.
        ("10.1.2.3", ["10.0.0.5, 10.0.0.6"], CLUSTER, "10.0.0.5"),
        # No header, or an empty one: the peer.
        ("127.0.0.1", [], LOOPBACK, "127.0.0.1"),
        ("127.0.0.1", [""], LOOPBACK, "127.0.0.1"),
        # Not an address: the walk ends at the proxy that wrote it.
        ("10.1.2.3", ["1.2.3.4, unknown, 10.0.0.5"], CLUSTER, "10.0.0.5"),
        ("127.0.0.1", ["1.2.3.4, <script>"], LOOPBACK, "127.0.0.1"),
        ("127.0.0.1", ["1.2.3.4,, "], LOOPBACK, "127.0.0.1"),
        ("127.0.0.1", ["0203.000.113.009"], LOOPBACK, "127.0.0.1"),
        # Ports, brackets, IPv6, IPv4-mapped peers; results normalised.
        ("127.0.0.1", ["198.51.100.7:5555"], LOOPBACK, "198.51.100.7"),
        ("127.0.0.1", ["[2001:DB8::1]:443"], LOOPBACK, "2001:db8::1"),
        ("127.0.0.1", ["2001:db8:0:0::1"], LOOPBACK, "2001:db8::1"),
        ("::ffff:127.0.0.1", ["203.0.113.9"], LOOPBACK, "203.0.113.9"),
        ("fd00::5", ["2001:db8::7, fd12::1"], CLUSTER, "2001:db8::7"),
        ("127.0.0.1", ["::ffff:203.0.113.9"], LOOPBACK, "203.0.113.9"),
        # Not an IP socket at all (a unix socket, a test client): as it is.
        (None, ["203.0.113.9"], LOOPBACK, "unknown"),
        ("testclient", ["203.0.113.9"], LOOPBACK, "testclient"),
    ],
)
def test_the_rule(
    peer: str | None, headers: list[str], trusted: list[Network], expected: str
) -> None:
    assert client_address(peer, headers, trusted) == expected


def test_a_client_behind_a_trusted_proxy_cannot_choose_its_address() -> None:
    """Whatever the client writes is left of what our proxy appends."""
    for spoof in ("127.0.0.1", "10.0.0.1", "203.0.113.50, 10.0.0.9", "x" * 10_000):
        header = f"{spoof}, 198.51.100.7"  # the proxy appended the address it saw
        assert client_address("10.0.0.2", [header], CLUSTER) == "198.51.100.7"


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    headers=st.lists(
        st.lists(
            st.one_of(
                st.ip_addresses().map(str), st.sampled_from(["10.0.0.1", "fd00::1"]), st.text()
            ),
            max_size=6,
        ).map(", ".join),
        max_size=3,
    ),
    peer=st.one_of(st.ip_addresses().map(str), st.sampled_from(["10.9.9.9", "fd00::9"])),
)
def test_the_answer_is_always_an_address(headers: list[str], peer: str) -> None:
    """Whatever the headers hold: an IP address (what the audit trail and the rate
    limiter may store), the peer unless the peer is a trusted proxy."""
    got = client_address(peer, headers, CLUSTER)
    assert str(ipaddress.ip_address(got)) == got
    address = ipaddress.ip_address(peer)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    if not any(address in net for net in CLUSTER):
        assert got == str(address)


def test_trusting_the_header_needs_the_proxies() -> None:
    with pytest.raises(ValidationError, match="TRUSTED_PROXIES"):
        Settings(trust_forwarded_for=True)
    configured = Settings(trust_forwarded_for=True, trusted_proxies=["10.0.0.0/8", "127.0.0.1"])
    assert [str(n) for n in configured.trusted_proxies] == ["10.0.0.0/8", "127.0.0.1/32"]
    with pytest.raises(ValidationError):
        Settings(trusted_proxies=["10.0.0.1/8"])  # host bits set: say the network

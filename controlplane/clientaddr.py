"""Who is calling: the client address the per-IP rate limits and the audit trail use.

The address is the connection's peer unless ``TRUST_FORWARDED_FOR`` is set *and* the
peer is one of ``TRUSTED_PROXIES``. Only then is ``X-Forwarded-For`` read, from the
right: each proxy appends the address it received the request from, so the entries
right of the last untrusted one were written by proxies we trust, and everything to
its left was written by the client (anything at all). Trusted proxies are skipped; the
first other address is the client. The server's own proxy-header handling is off
(``serve`` runs uvicorn with ``proxy_headers=False``), so this is the only rule.

- several ``X-Forwarded-For`` headers are one list, in order (RFC 9110, 5.3);
- an entry that is not an IP address (``unknown``, a name, garbage) ends the walk: the
  proxy that wrote it is the last hop we can vouch for, and its address is used;
- when every entry is a trusted proxy, the left-most is (a proxy called us itself);
- addresses come back normalised (``ipaddress``), IPv4-mapped IPv6 as IPv4, so what is
  counted and recorded is an address, never text from a header.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_MAX_ENTRIES = 64  # far more hops than any real chain; the walk stops there


def parse_address(text: str) -> Address | None:
    """An IP address from a forwarded entry (``1.2.3.4``, ``1.2.3.4:5678``, ``::1``,
    ``[::1]:5678``), IPv4-mapped IPv6 as IPv4; None for anything else."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted_proxies: Sequence[Network]
) -> str:
    """The client's address by the rule above (``trusted_proxies`` empty: the peer)."""
    hop = parse_address(peer) if peer else None
    if hop is None:
        return peer[:64] if peer else "unknown"  # not an IP socket: nothing to trust
    if not trusted_proxies or not _trusted(hop, trusted_proxies):
        return str(hop)
    entries = [e for header in forwarded_for for e in header.split(",")]
    for entry in reversed(entries[-_MAX_ENTRIES:]):
        address = parse_address(entry)
        if address is None:
            return str(hop)  # the proxy that wrote this is the last we can vouch for
        hop = address
        if not _trusted(address, trusted_proxies):
            return str(address)
    return str(hop)  # every hop a trusted proxy: the left-most of them

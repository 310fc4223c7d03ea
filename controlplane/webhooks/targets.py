"""Which webhook URLs the control plane may call (SSRF policy).

A URL must be ``https://`` (``http://`` only with ``webhook_allow_http``, for local
runs), carry no credentials, and every address its host resolves to must be global:
loopback, link-local (cloud metadata at 169.254.169.254), private, shared (CGNAT),
multicast, reserved and unspecified addresses are refused unless
``webhook_allow_private_targets`` (local runs). The check runs at creation (422 naming
``url``) and again at every delivery, since a name may resolve elsewhere later; the
delivery then connects to the very address that was checked (``Resolved``), so a name
that changes between the check and the connection cannot slip through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit


class TargetRefused(Exception):
    """The URL or its addresses are not allowed; ``str()`` names the reason (no secret)."""


@dataclass(frozen=True)
class Policy:
    allow_http: bool
    allow_private: bool


@dataclass(frozen=True)
class Resolved:
    """A checked URL: connect to ``address`` and present ``host`` (Host header, SNI)."""

    url: str
    """The URL with the host replaced by the checked address."""
    host: str
    address: str


def check_syntax(url: str, policy: Policy) -> None:
    """Refuse what is wrong with the URL itself (scheme, credentials, host, port)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("https", "http"):
        raise TargetRefused("must be an https:// URL")
    if parts.scheme == "http" and not policy.allow_http:
        raise TargetRefused("must be an https:// URL (http:// is for local runs only)")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("must not carry credentials")
    if not parts.hostname:
        raise TargetRefused("has no host")
    if port == 0:
        raise TargetRefused("has port 0")


def address_allowed(address: str, policy: Policy) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if policy.allow_private:
        return not ip.is_unspecified and not ip.is_multicast
    return ip.is_global and not ip.is_multicast


async def resolve(url: str, policy: Policy) -> Resolved:
    """Check ``url`` and every address of its host; the first address to connect to."""
    check_syntax(url, policy)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise TargetRefused("host does not resolve") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise TargetRefused("host does not resolve")
    refused = [a for a in addresses if not address_allowed(a, policy)]
    if refused:
        raise TargetRefused(
            "host resolves to a non-global address (loopback, private, link-local or "
            "reserved), which webhooks may not target"
        )
    address = addresses[0]
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return Resolved(url=pinned, host=host, address=address)


def host_header(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{host}]" if ":" in host else host
    return f"{literal}:{parts.port}" if parts.port else literal

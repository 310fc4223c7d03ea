"""Client addresses (issue 18 item 8), through the real server process: uvicorn as
``tenantry controlplane serve`` runs it, where its own proxy-header handling would
believe X-Forwarded-For from loopback, which is where these requests come from.

With the default settings the header is ignored, whatever it says; with
TRUST_FORWARDED_FOR and 127.0.0.1 among TRUSTED_PROXIES it is read from the right;
with proxies that do not include the peer it is ignored again. The per-IP login limit
and the audit trail use the same address, and rotating the header gets around neither.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import pytest

from tests.integration.controlplane.conftest import PASSWORD
from tests.integration.controlplane.processes import Served, control_plane_process

PER_IP = 3
BASE = {
    "TENANTRY_CP_ARGON2_TIME_COST": "1",
    "TENANTRY_CP_ARGON2_MEMORY_KIB": "8192",
    "TENANTRY_CP_RATE_LIMIT_PER_IP": str(PER_IP),
    "TENANTRY_CP_RATE_LIMIT_PER_IDENTITY": "100000",
}
Serve = Callable[[dict[str, str]], AbstractAsyncContextManager[Served]]
_spoofs = (f"203.0.113.{i}" for i in itertools.count(1))
_emails = (f"nobody{i}@example.com" for i in itertools.count())


@pytest.fixture
def serve(database: str, redis_db: str, tmp_path: Path) -> Serve:
    def start(env: dict[str, str]) -> AbstractAsyncContextManager[Served]:
        return control_plane_process(
            database=database,
            redis=redis_db,
            kubeconfig=None,
            extra_env={**BASE, **env},
            log=tmp_path / "controlplane.log",
        )

    return start


async def _owner(http: httpx.AsyncClient) -> tuple[dict[str, str], str]:
    """An account with an organisation (signed up and logged in from the bare peer)."""
    email = "owner@example.com"
    r = await http.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = await http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = await http.post("/v1/orgs", json={"slug": "addr", "name": "A"}, headers=headers)
    assert r.status_code == 201, r.text
    return headers, str(r.json()["id"])


async def _recorded_ip(
    http: httpx.AsyncClient, headers: dict[str, str], org: str, forwarded: list[str]
) -> str:
    """The address the audit trail records for a change sent with these headers."""
    name = f"n{len(forwarded)}-{next(_emails)}"
    sent = {**headers, **({"X-Forwarded-For": ", ".join(forwarded)} if forwarded else {})}
    r = await http.patch(f"/v1/orgs/{org}", json={"name": name[:50]}, headers=sent)
    assert r.status_code == 200, r.text
    r = await http.get(f"/v1/orgs/{org}/audit", params={"action": "org.update"}, headers=headers)
    return str(r.json()["events"][-1]["ip"])


async def _login_statuses(
    http: httpx.AsyncClient, forwarded: Callable[[], str], n: int
) -> list[int]:
    """Wrong-password logins, each for another e-mail (the per-identity limit stays
    out of it) and with the X-Forwarded-For ``forwarded()`` makes."""
    statuses = []
    for _ in range(n):
        body = {"email": next(_emails), "password": "wrong password!!"}
        r = await http.post("/v1/auth/login", json=body, headers={"X-Forwarded-For": forwarded()})
        statuses.append(r.status_code)
    return statuses


async def test_by_default_the_header_is_ignored(serve: Serve) -> None:
    async with serve({}) as served, httpx.AsyncClient(base_url=served.url) as http:
        headers, org = await _owner(http)
        assert await _recorded_ip(http, headers, org, ["203.0.113.9"]) == "127.0.0.1"
        assert await _recorded_ip(http, headers, org, ["10.0.0.1, 203.0.113.9"]) == "127.0.0.1"
        # Rotating the header does not buy new per-IP budgets: the limit holds (the
        # owner's login from 127.0.0.1 spent one of them).
        statuses = await _login_statuses(http, lambda: next(_spoofs), PER_IP + 1)
        assert statuses == [401] * (PER_IP - 1) + [429, 429]


async def test_behind_a_trusted_proxy_the_right_most_untrusted_address_counts(
    serve: Serve,
) -> None:
    env = {
        "TENANTRY_CP_TRUST_FORWARDED_FOR": "true",
        "TENANTRY_CP_TRUSTED_PROXIES": json.dumps(["127.0.0.1", "10.0.0.0/8"]),
    }
    async with serve(env) as served, httpx.AsyncClient(base_url=served.url) as http:
        headers, org = await _owner(http)
        # The proxy (127.0.0.1, the peer) appended the address it saw on the right;
        # whatever the client wrote is to its left.
        assert await _recorded_ip(http, headers, org, ["203.0.113.9"]) == "203.0.113.9"
        assert await _recorded_ip(http, headers, org, ["1.2.3.4", "198.51.100.7"]) == (
            "198.51.100.7"
        )
        # Trusted proxies on the way are skipped.
        assert await _recorded_ip(http, headers, org, ["198.51.100.7", "10.0.0.5"]) == (
            "198.51.100.7"
        )
        # What is recorded is an address, never the header's text.
        assert await _recorded_ip(http, headers, org, ["<img>", "10.0.0.5"]) == "10.0.0.5"
        assert await _recorded_ip(http, headers, org, []) == "127.0.0.1"

        # One client rotating what it writes, behind the proxy: one budget.
        statuses = await _login_statuses(http, lambda: f"{next(_spoofs)}, 198.51.100.7", PER_IP + 1)
        assert statuses == [401] * PER_IP + [429]
        # Another client behind the same proxy has its own.
        assert await _login_statuses(http, lambda: "198.51.100.8", 1) == [401]


async def test_the_header_of_a_peer_that_is_not_a_trusted_proxy_is_ignored(
    serve: Serve,
) -> None:
    env = {
        "TENANTRY_CP_TRUST_FORWARDED_FOR": "true",
        "TENANTRY_CP_TRUSTED_PROXIES": json.dumps(["10.0.0.0/8"]),
    }
    async with serve(env) as served, httpx.AsyncClient(base_url=served.url) as http:
        headers, org = await _owner(http)
        assert await _recorded_ip(http, headers, org, ["203.0.113.9"]) == "127.0.0.1"
        assert await _recorded_ip(http, headers, org, ["203.0.113.9", "10.0.0.5"]) == ("127.0.0.1")
        statuses = await _login_statuses(http, lambda: next(_spoofs), PER_IP + 1)
        assert statuses == [401] * (PER_IP - 1) + [429, 429]  # the owner's login: one


async def test_trusting_the_header_without_naming_the_proxies_does_not_start(
    serve: Serve,
) -> None:
    with pytest.raises(RuntimeError, match="TRUSTED_PROXIES"):
        async with serve({"TENANTRY_CP_TRUST_FORWARDED_FOR": "true"}):
            pass

"""OAuth 2.0 authorization code with PKCE for a registered public client, and the token
endpoint's rate limits."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx

from controlplane.auth.crypto import new_token, pkce_challenge
from tests.integration.controlplane.conftest import (
    PASSWORD,
    bearer,
    make_settings,
    serve,
    sign_up_and_login,
)
from tests.support.wait import scaled

REDIRECT = "https://app.example.com/callback"


def _register(database: str) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tenantry_cli",
            "controlplane",
            "add-client",
            "saas-ui",
            "--name",
            "SaaS UI",
            "--redirect-uri",
            REDIRECT,
        ],
        env={**os.environ, "TENANTRY_CP_DATABASE_URL": database},
        check=True,
        capture_output=True,
        timeout=scaled(120),
    )


async def _authorize(
    http: httpx.AsyncClient, email: str, verifier: str, **overrides: str
) -> httpx.Response:
    form = {
        "response_type": "code",
        "client_id": "saas-ui",
        "redirect_uri": REDIRECT,
        "code_challenge": pkce_challenge(verifier),
        "code_challenge_method": "S256",
        "state": "xyz",
        "email": email,
        "password": PASSWORD,
        **overrides,
    }
    return await http.post("/v1/oauth/authorize", data=form)


def _query(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def test_full_pkce_flow(client: httpx.AsyncClient, database: str) -> None:
    _register(database)
    user = await sign_up_and_login(client)
    verifier = new_token(48)
    params = _query(await _authorize(client, user["email"], verifier))
    assert params["state"] == "xyz"
    token = {
        "grant_type": "authorization_code",
        "client_id": "saas-ui",
        "redirect_uri": REDIRECT,
        "code": params["code"],
        "code_verifier": verifier,
    }
    r = await client.post("/v1/oauth/token", data=token)
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert r.headers["cache-control"] == "no-store"
    me = await client.get(
        "/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.json()["email"] == user["email"]
    # A code works once.
    r = await client.post("/v1/oauth/token", data=token)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    # The refresh token belongs to this client: rotation works for it, not for another.
    r = await client.post(
        "/v1/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "saas-ui",
            "refresh_token": tokens["refresh_token"],
        },
    )
    assert r.status_code == 200
    r2 = await client.post(
        "/v1/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "other",
            "refresh_token": r.json()["refresh_token"],
        },
    )
    assert r2.status_code == 400


async def test_pkce_rejections(client: httpx.AsyncClient, database: str) -> None:
    _register(database)
    user = await sign_up_and_login(client)
    verifier = new_token(48)
    # A wrong verifier fails, and burns the code.
    params = _query(await _authorize(client, user["email"], verifier))
    base = {
        "grant_type": "authorization_code",
        "client_id": "saas-ui",
        "redirect_uri": REDIRECT,
        "code": params["code"],
    }
    r = await client.post("/v1/oauth/token", data={**base, "code_verifier": new_token(48)})
    assert r.json()["error"] == "invalid_grant"
    r = await client.post("/v1/oauth/token", data={**base, "code_verifier": verifier})
    assert r.json()["error"] == "invalid_grant"
    # The redirect URI at the token endpoint must be the one the code was issued for.
    params = _query(await _authorize(client, user["email"], verifier))
    r = await client.post(
        "/v1/oauth/token",
        data={
            **base,
            "code": params["code"],
            "code_verifier": verifier,
            "redirect_uri": REDIRECT + "/",
        },
    )
    assert r.json()["error"] == "invalid_grant"
    # plain and missing challenges are refused (redirected with an error).
    for method in ("plain", ""):
        q = _query(
            await _authorize(
                client,
                user["email"],
                verifier,
                code_challenge_method=method,
                code_challenge=verifier[:43],
            )
        )
        assert q["error"] == "invalid_request"
        assert "code" not in q
    q = _query(await _authorize(client, user["email"], verifier, response_type="token"))
    assert q["error"] == "unsupported_response_type"
    # Unregistered redirect URIs get no redirect at all: exact match only.
    for uri in (
        REDIRECT + "/",
        REDIRECT + "?x=1",
        "https://app.example.com.evil.test/callback",
        "https://APP.example.com/callback",
    ):
        r = await _authorize(client, user["email"], verifier, redirect_uri=uri)
        assert r.status_code == 400, uri
        assert "location" not in r.headers
    r = await _authorize(client, user["email"], verifier, client_id="unknown")
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    # Wrong password: no code.
    r = await _authorize(client, user["email"], verifier, password="wrong password!!")
    assert r.status_code == 401
    assert "location" not in r.headers
    r = await client.post("/v1/oauth/token", data={"grant_type": "password", "client_id": "x"})
    assert r.json()["error"] == "unsupported_grant_type"


async def test_token_endpoint_is_rate_limited_per_identity(database: str, redis_db: str) -> None:
    """Many addresses hammering one identity get 429 in the OAuth shape; others don't."""
    settings = make_settings(
        database,
        redis_db,
        trust_forwarded_for=True,
        trusted_proxies=["203.0.113.7"],  # the in-process client's address (conftest.serve)
        rate_limit_per_ip=3,
        rate_limit_per_identity=3,
        rate_limit_per_client=3,
    )
    addresses = (f"198.51.100.{i}" for i in itertools.count(1))
    async with serve(settings) as (_, http):

        async def token(form: dict[str, str], ip: str | None = None) -> httpx.Response:
            headers = {"X-Forwarded-For": ip or next(addresses)}
            return await http.post("/v1/oauth/token", data=form, headers=headers)

        def refused(r: httpx.Response) -> None:
            assert r.status_code == 429, r.text
            assert 0 < int(r.headers["retry-after"]) <= 61
            assert r.headers["cache-control"] == "no-store"
            body = r.json()
            assert set(body) == {"error", "error_description"}
            assert body["error"] == "slow_down"

        # Authorization codes: the client is the identity, whatever the address.
        guess = {
            "grant_type": "authorization_code",
            "client_id": "saas-ui",
            "redirect_uri": REDIRECT,
            "code": new_token(),
            "code_verifier": new_token(48),
        }
        assert [(await token(guess)).status_code for _ in range(3)] == [400, 400, 400]
        refused(await token(guess))
        r = await token({**guess, "client_id": "other-client"})
        assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")

        # Refresh tokens: the account is the identity. A leaked token replayed from many
        # addresses is refused once that user's budget is spent...
        victim = await sign_up_and_login(http)
        bystander = await sign_up_and_login(http)
        replay = {
            "grant_type": "refresh_token",
            "client_id": "password",
            "refresh_token": victim["refresh"],
        }
        assert [(await token(replay)).status_code for _ in range(3)] == [200, 400, 400]
        refused(await token(replay))
        # ...while another user of the same client, and tokens we never issued (counted
        # per client), are unaffected.
        r = await token({**replay, "refresh_token": bystander["refresh"]})
        assert r.status_code == 200, r.text
        r = await token({**replay, "refresh_token": "rt_" + new_token()})
        assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")

        # The per-IP limit of the endpoint answers in the same OAuth shape.
        for i in range(3):
            r = await token({**guess, "client_id": f"client-{i}"}, ip="192.0.2.99")
            assert r.status_code == 400
        refused(await token({**guess, "client_id": "client-9"}, ip="192.0.2.99"))


async def test_ending_every_session_revokes_password_and_oauth_sessions_alike(
    client: httpx.AsyncClient, database: str
) -> None:
    """DELETE /v1/auth/sessions ends every session of the caller (its own too), whatever
    client opened it: access and refresh tokens stop working; another account's
    session does not; it is audited; signing in again works."""
    _register(database)
    user = await sign_up_and_login(client)
    other = await sign_up_and_login(client)
    login = await client.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert login.status_code == 200, login.text
    second = login.json()
    verifier = new_token(48)
    code = _query(await _authorize(client, user["email"], verifier))["code"]
    r = await client.post(
        "/v1/oauth/token",
        data={
            "grant_type": "authorization_code",
            "client_id": "saas-ui",
            "redirect_uri": REDIRECT,
            "code": code,
            "code_verifier": verifier,
        },
    )
    assert r.status_code == 200, r.text
    console = r.json()
    accesses = [
        bearer(user),
        {"Authorization": f"Bearer {second['access_token']}"},
        {"Authorization": f"Bearer {console['access_token']}"},
    ]
    for h in accesses:
        assert (await client.get("/v1/users/me", headers=h)).status_code == 200

    r = await client.delete("/v1/auth/sessions", headers=bearer(user))
    assert r.status_code == 200, r.text
    assert r.json() == {"ended": 3}

    for h in accesses:  # the caller's session is one of them
        r = await client.get("/v1/users/me", headers=h)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "unauthenticated"
    for token in (user["refresh"], second["refresh_token"]):
        r = await client.post("/v1/auth/refresh", json={"refresh_token": token})
        assert r.status_code == 400, r.text
    r = await client.post(
        "/v1/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "saas-ui",
            "refresh_token": console["refresh_token"],
        },
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_grant"
    assert (await client.get("/v1/users/me", headers=bearer(other))).status_code == 200
    # no session left to end it with; the one JSON error shape
    r = await client.delete("/v1/auth/sessions", headers=bearer(user))
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"

    conn = await asyncpg.connect(database)
    try:
        me = await conn.fetchval("SELECT id FROM users WHERE email = $1", user["email"])
        rows = await conn.fetch(
            "SELECT actor, target, outcome, detail FROM audit_events "
            "WHERE action = 'auth.logout_all'"
        )
    finally:
        await conn.close()
    assert [(r["actor"], r["target"], r["outcome"]) for r in rows] == [
        (str(me), f"user/{me}", "success")
    ]
    assert json.loads(rows[0]["detail"]) == {"sessions": 3}

    again = await client.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert again.status_code == 200, again.text
    h = {"Authorization": f"Bearer {again.json()['access_token']}"}
    assert (await client.get("/v1/users/me", headers=h)).status_code == 200
    r = await client.delete("/v1/auth/sessions", headers=h)
    assert r.json() == {"ended": 1}

"""OAuth 2.0 authorization code with PKCE for a registered public client."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import httpx

from controlplane.auth.crypto import new_token, pkce_challenge
from tests.integration.controlplane.conftest import PASSWORD, sign_up_and_login

REDIRECT = "https://app.example.com/callback"


def _register(database: str) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tenantry.cli",
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

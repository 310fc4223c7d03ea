"""Sign-up, password login, JWT checks, refresh rotation with reuse detection, logout,
key rotation and rate limits, against real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from prometheus_client import generate_latest

from controlplane.deps import AppState
from controlplane.settings import Settings
from tests.integration.controlplane.conftest import (
    PASSWORD,
    bearer,
    make_settings,
    serve,
    sign_up_and_login,
)
from tests.support.wait import scaled


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    data: dict[str, object] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return data


async def test_sign_up_rejects_duplicates_and_weak_passwords(client: httpx.AsyncClient) -> None:
    body = {"email": "Ada@Example.com", "password": PASSWORD, "name": "Ada"}
    r = await client.post("/v1/auth/signup", json=body)
    assert r.status_code == 201
    assert r.json()["email"] == "Ada@Example.com"
    r = await client.post("/v1/auth/signup", json={**body, "email": "ada@example.COM"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "conflict"
    r = await client.post(
        "/v1/auth/signup", json={"email": "b@example.com", "password": "Zq9-secret"}
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["loc"] == ["body", "password"]
    assert "Zq9-secret" not in r.text  # the submitted value is never echoed
    r = await client.post("/v1/auth/signup", json={**body, "email": "c@example.com", "admin": True})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["type"] == "extra_forbidden"


async def test_login_issues_a_well_formed_access_token(client: httpx.AsyncClient) -> None:
    user = await sign_up_and_login(client)
    token = user["Authorization"].removeprefix("Bearer ")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    claims = _claims(token)
    assert claims["iss"] == "https://cp.test"
    assert claims["aud"] == "tenantry-api"
    assert int(str(claims["exp"])) - int(str(claims["iat"])) == 3600
    assert claims["jti"]
    assert claims["sub"]
    jwks = (await client.get("/.well-known/jwks.json")).json()
    [key] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    public = jwt.PyJWK(key).key
    decoded = jwt.decode(token, public, algorithms=["EdDSA"], audience="tenantry-api")
    assert decoded["sub"] == claims["sub"]
    me = await client.get("/v1/users/me", headers=bearer(user))
    assert me.status_code == 200
    assert me.json()["email"] == user["email"]


async def test_wrong_password_is_401_and_audited(client: httpx.AsyncClient, database: str) -> None:
    user = await sign_up_and_login(client)
    r = await client.post("/v1/auth/login", json={"email": user["email"], "password": "x" * 20})
    assert r.status_code == 401
    assert r.json()["error"]["message"] == "invalid e-mail or password"
    r2 = await client.post("/v1/auth/login", json={"email": "nobody@example.com", "password": "y"})
    assert r2.json()["error"]["message"] == r.json()["error"]["message"]
    import asyncpg

    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch(
            "SELECT actor, outcome FROM audit_events WHERE action = 'auth.login' ORDER BY seq"
        )
    finally:
        await conn.close(timeout=scaled(30))
    outcomes = [(r["actor"], r["outcome"]) for r in rows]
    assert (f"email:{user['email'].lower()}", "failure") in outcomes
    assert ("email:nobody@example.com", "failure") in outcomes


async def test_forged_tokens_are_rejected(client: httpx.AsyncClient) -> None:
    user = await sign_up_and_login(client)
    good = user["Authorization"].removeprefix("Bearer ")
    header = jwt.get_unverified_header(good)
    claims = _claims(good)
    other_key = ed25519.Ed25519PrivateKey.generate()
    now = datetime.now(UTC)
    forged = {
        "alg none": jwt.encode(claims, "", algorithm="none", headers={"kid": header["kid"]}),
        "HS256": jwt.encode(
            claims,
            "secret-guess-32-bytes-long-enough!",
            algorithm="HS256",
            headers={"kid": header["kid"]},
        ),
        "foreign key": jwt.encode(
            claims, other_key, algorithm="EdDSA", headers={"kid": header["kid"]}
        ),
        "unknown kid": jwt.encode(claims, other_key, algorithm="EdDSA", headers={"kid": "nope"}),
        "tampered": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "garbage": "not-a-jwt",
    }
    for name, token in forged.items():
        r = await client.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, name
        assert r.headers["www-authenticate"] == "Bearer"
    assert (await client.get("/v1/users/me")).status_code == 401
    # Correctly signed, but expired / wrong audience / wrong issuer / missing jti.
    app_key = None
    del app_key, now


async def test_expired_and_misaddressed_tokens(settings: Settings) -> None:
    async with serve(settings) as (app, http):
        user = await sign_up_and_login(http)
        state: AppState = app.state.cp
        keys = state.auth.keys
        active = next(k for k in keys._keys.values() if k.active)
        base = _claims(user["Authorization"].removeprefix("Bearer "))
        now = datetime.now(UTC)
        variants = {
            "expired": {**base, "iat": now - timedelta(hours=2), "exp": now - timedelta(hours=1)},
            "audience": {**base, "aud": "someone-else"},
            "issuer": {**base, "iss": "https://evil.test"},
            "no jti": {k: v for k, v in base.items() if k != "jti"},
        }
        for name, claims in variants.items():
            token = jwt.encode(
                claims, active.private, algorithm="EdDSA", headers={"kid": active.kid}
            )
            r = await http.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, name
        assert r.json()["error"]["code"] == "unauthenticated"


async def test_refresh_rotates_and_reuse_revokes_the_family(client: httpx.AsyncClient) -> None:
    user = await sign_up_and_login(client)
    first = user["refresh"]
    r = await client.post("/v1/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 200
    second = r.json()
    assert second["refresh_token"] != first
    assert r.headers["cache-control"] == "no-store"
    new_access = {"Authorization": f"Bearer {second['access_token']}"}
    assert (await client.get("/v1/users/me", headers=new_access)).status_code == 200
    # An attacker replays the first (already used) token: the whole family dies.
    r = await client.post("/v1/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    r = await client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 400
    assert (await client.get("/v1/users/me", headers=new_access)).status_code == 401
    assert (await client.get("/v1/users/me", headers=bearer(user))).status_code == 401
    # Another session of the same user is untouched.
    r = await client.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    other = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert (await client.get("/v1/users/me", headers=other)).status_code == 200


async def test_logout_revokes_access_and_refresh(client: httpx.AsyncClient) -> None:
    user = await sign_up_and_login(client)
    r = await client.post("/v1/auth/logout", headers=bearer(user))
    assert r.status_code == 204
    assert (await client.get("/v1/users/me", headers=bearer(user))).status_code == 401
    r = await client.post("/v1/auth/refresh", json={"refresh_token": user["refresh"]})
    assert r.status_code == 400


async def test_key_rotation_keeps_sessions_until_the_old_key_retires(
    database: str, redis_db: str
) -> None:
    settings = make_settings(database, redis_db, key_refresh_seconds=0)
    async with serve(settings) as (_, http):
        user = await sign_up_and_login(http)
        old_kid = jwt.get_unverified_header(user["Authorization"].removeprefix("Bearer "))["kid"]
        env = {**os.environ, "TENANTRY_CP_DATABASE_URL": database}
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "tenantry_cli", "controlplane", "rotate-key"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=scaled(120),
        )
        out = done.stdout
        new_kid = out.strip().rsplit(" ", 1)[-1]
        assert new_kid != old_kid
        fresh = await sign_up_and_login(http)
        assert (
            jwt.get_unverified_header(fresh["Authorization"].removeprefix("Bearer "))["kid"]
            == new_kid
        )
        kids = {k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]}
        assert kids == {old_kid, new_kid}
        assert (await http.get("/v1/users/me", headers=bearer(user))).status_code == 200
        # Retiring the old key ends what it signed; the new key's tokens keep working.
        retire = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "tenantry_cli", "controlplane", "retire-key", "--", old_kid],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=scaled(120),
        )
        assert retire.returncode == 0, retire.stderr
        assert (await http.get("/v1/users/me", headers=bearer(user))).status_code == 401
        assert (await http.get("/v1/users/me", headers=bearer(fresh))).status_code == 200
        kids = {k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]}
        assert kids == {new_kid}
        # The active key can never be retired.
        refused = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "tenantry_cli", "controlplane", "retire-key", "--", new_kid],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=scaled(120),
        )
        assert refused.returncode == 1


async def test_login_is_rate_limited_per_identity_and_ip(database: str, redis_db: str) -> None:
    settings = make_settings(
        database,
        redis_db,
        rate_limit_per_identity=3,
        rate_limit_per_ip=5,
        rate_limit_window_seconds=60,
    )
    async with serve(settings) as (_, http):
        body = {"email": "victim@example.com", "password": "wrong-password-1"}
        codes = [(await http.post("/v1/auth/login", json=body)).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        r = await http.post("/v1/auth/login", json=body)
        assert 0 < int(r.headers["retry-after"]) <= 61
        assert r.json()["error"]["code"] == "rate_limited"
        # Other identities from the same IP hit the per-IP limit (5 per window).
        r = await http.post("/v1/auth/login", json={**body, "email": "x@example.com"})
        assert r.status_code == 429


async def test_request_ids_and_metrics(settings: Settings) -> None:
    async with serve(settings) as (app, client):
        r = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
        assert r.headers["x-request-id"] == "abc-123"
        r = await client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})
        assert r.headers["x-request-id"] != "bad id\nwith newline"
        await client.get(f"/v1/orgs/{uuid.uuid4()}")
        # Never on the public app (`serve` scrapes them on its internal port).
        assert (await client.get("/metrics")).status_code == 404
        state: AppState = app.state.cp
        text = generate_latest(state.metrics.registry).decode()
    assert 'tenantry_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="/v1/orgs/{org_id}",status="401"' in text
    assert "tenantry_http_request_duration_seconds_bucket" in text


@pytest.mark.parametrize("origin", ["https://app.example.com"])
async def test_cors_from_settings(database: str, redis_db: str, origin: str) -> None:
    settings = make_settings(database, redis_db, cors_origins=[origin])
    async with serve(settings) as (_, http):
        r = await http.options(
            "/v1/auth/login",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        )
        assert r.headers["access-control-allow-origin"] == origin
        r = await http.options(
            "/v1/auth/login",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in r.headers


async def test_control_characters_are_422_not_500(client: httpx.AsyncClient) -> None:
    """Found by the fuzzer: PostgreSQL cannot store NUL, so it must never reach it."""
    bad = [
        ("/v1/auth/signup", {"email": "a\x00b@example.com", "password": PASSWORD}),
        ("/v1/auth/signup", {"email": "ok@example.com", "password": PASSWORD, "name": "a\x00"}),
        ("/v1/auth/login", {"email": "a\x00b@example.com", "password": "x"}),
    ]
    for url, body in bad:
        r = await client.post(url, json=body)
        assert r.status_code == 422, (url, r.text)
    r = await client.post(
        "/v1/oauth/authorize",
        data={
            "client_id": "c\x00",
            "redirect_uri": "https://x.test/cb",
            "email": "a@example.com",
            "password": "x",
        },
    )
    assert r.status_code == 422


async def test_signing_keys_are_encrypted_at_rest_when_a_secret_is_set(
    database: str, redis_db: str
) -> None:
    import asyncpg
    from cryptography.fernet import Fernet

    settings = make_settings(database, redis_db, signing_key_secret=Fernet.generate_key().decode())
    async with serve(settings) as (_, http):
        user = await sign_up_and_login(http)
        assert (await http.get("/v1/users/me", headers=bearer(user))).status_code == 200
    conn = await asyncpg.connect(database)
    try:
        stored = await conn.fetchval("SELECT private_pem FROM signing_keys")
    finally:
        await conn.close(timeout=scaled(30))
    assert stored.startswith("fernet:")
    assert "PRIVATE KEY" not in stored

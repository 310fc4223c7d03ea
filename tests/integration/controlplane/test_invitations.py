"""Invitations: people without an account can be invited; only the invited e-mail can
accept, once, before expiry; revoked invitations are dead; roles can't be escalated."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from tests.integration.controlplane.conftest import (
    bearer,
    new_org,
    sign_up_and_login,
)
from tests.support.wait import scaled


async def test_invite_sign_up_and_accept(client: httpx.AsyncClient, database: str) -> None:
    owner = await sign_up_and_login(client)
    org_id = await new_org(client, owner)
    h = bearer(owner)
    r = await client.post(
        f"/v1/orgs/{org_id}/invitations",
        json={"email": "New.Person@example.com", "role": "editor"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    listed = (await client.get(f"/v1/orgs/{org_id}/invitations", headers=h)).json()
    assert [(i["email"], i["role"]) for i in listed] == [("new.person@example.com", "editor")]
    assert "token" not in listed[0]
    r = await client.post(
        f"/v1/orgs/{org_id}/invitations",
        json={"email": "new.person@example.com", "role": "viewer"},
        headers=h,
    )
    assert r.status_code == 409
    # Someone else holding the token cannot use it.
    stranger = await sign_up_and_login(client)
    r = await client.post("/v1/invitations/accept", json={"token": token}, headers=bearer(stranger))
    assert r.status_code == 404
    invitee = await sign_up_and_login(client, email="new.person@EXAMPLE.com")
    r = await client.post("/v1/invitations/accept", json={"token": token}, headers=bearer(invitee))
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["role"]) == (org_id, "editor")
    r = await client.post("/v1/invitations/accept", json={"token": token}, headers=bearer(invitee))
    assert r.status_code == 404  # used
    members = (await client.get(f"/v1/orgs/{org_id}/members", headers=h)).json()
    assert {m["role"] for m in members} == {"owner", "editor"}
    assert (await client.get(f"/v1/orgs/{org_id}/invitations", headers=h)).json() == []
    conn = await asyncpg.connect(database)
    try:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM invitations WHERE token_hash = $1", token.encode()
            )
            == 0
        )  # only the digest is stored
    finally:
        await conn.close(timeout=scaled(30))
    actions = [
        e["action"]
        for e in (await client.get(f"/v1/orgs/{org_id}/audit", headers=h)).json()["events"]
    ]
    assert "invitation.create" in actions
    assert "invitation.accept" in actions


async def test_revoked_and_expired_invitations_and_escalation(
    client: httpx.AsyncClient, database: str
) -> None:
    owner = await sign_up_and_login(client)
    org_id = await new_org(client, owner)
    h = bearer(owner)
    url = f"/v1/orgs/{org_id}/invitations"
    revoked = (
        await client.post(url, json={"email": "a@example.com", "role": "viewer"}, headers=h)
    ).json()
    assert (await client.delete(f"{url}/{revoked['id']}", headers=h)).status_code == 204
    expired = (
        await client.post(url, json={"email": "b@example.com", "role": "viewer"}, headers=h)
    ).json()
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(
            "UPDATE invitations SET expires_at = now() WHERE id = $1",
            uuid.UUID(expired["id"]),
        )
    finally:
        await conn.close(timeout=scaled(30))
    for email, token in (("a@example.com", revoked["token"]), ("b@example.com", expired["token"])):
        user = await sign_up_and_login(client, email=email)
        r = await client.post("/v1/invitations/accept", json={"token": token}, headers=bearer(user))
        assert r.status_code == 404, email
    # An admin cannot invite owners.
    admin = await sign_up_and_login(client)
    await client.post(
        f"/v1/orgs/{org_id}/members", json={"email": admin["email"], "role": "admin"}, headers=h
    )
    r = await client.post(
        url, json={"email": "c@example.com", "role": "owner"}, headers=bearer(admin)
    )
    assert r.status_code == 403

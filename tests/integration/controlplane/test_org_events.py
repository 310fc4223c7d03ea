"""What happens to an organisation reaches its people (issue 16, item 4): an invitation
sent and a member removed become a notice members see and a signed event to the
organisation's webhooks (Standard Webhooks, checked with the specification's HMAC),
never with the invitation's token. Real PostgreSQL, Redis and a receiving HTTP server on
loopback; invoices finalized are covered in tests/integration/billing/test_invoices.py."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.integration.controlplane.conftest import bearer, new_org, sign_up_and_login
from tests.integration.controlplane.webhook_receiver import receiver, verify
from tests.support.wait import until


async def test_an_invitation_and_a_removal_are_told_to_the_organisation(
    local: httpx.AsyncClient,
) -> None:
    owner = await sign_up_and_login(local)
    org_id = await new_org(local, owner)
    member = await sign_up_and_login(local)
    async with receiver() as rec:
        r = await local.post(
            f"/v1/orgs/{org_id}/webhooks",
            json={"url": rec.url("/hook"), "event_types": ["member.invited", "member.removed"]},
            headers=bearer(owner),
        )
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]

        r = await local.post(
            f"/v1/orgs/{org_id}/invitations",
            json={"email": member["email"], "role": "viewer"},
            headers=bearer(owner),
        )
        assert r.status_code == 201, r.text
        invitation = r.json()
        r = await local.post(
            "/v1/invitations/accept", json={"token": invitation["token"]}, headers=bearer(member)
        )
        assert r.status_code in (200, 201), r.text
        me = (await local.get("/v1/users/me", headers=bearer(member))).json()
        r = await local.delete(f"/v1/orgs/{org_id}/members/{me['id']}", headers=bearer(owner))
        assert r.status_code == 204, r.text

        await until(lambda: len(rec.received) >= 2, what="two events delivered", timeout=60)
        events: list[dict[str, Any]] = []
        for got in rec.received[:2]:
            assert verify(secret, got.headers, got.body)
            assert invitation["token"] not in got.body.decode()
            events.append(json.loads(got.body))
    by_type = {e["type"]: e["data"] for e in events}  # deliveries may overtake
    assert sorted(by_type) == ["member.invited", "member.removed"]
    invited, removed = by_type["member.invited"], by_type["member.removed"]
    assert invited["invitation_id"] == invitation["id"]
    assert (invited["email"], invited["role"]) == (member["email"], "viewer")
    assert (removed["user_id"], removed["role"]) == (me["id"], "viewer")

    r = await local.get(f"/v1/orgs/{org_id}/notifications", headers=bearer(owner))
    assert r.status_code == 200, r.text
    names = [n["alertname"] for n in r.json()]
    assert sorted(names) == ["MemberInvited", "MemberRemoved"]
    assert invitation["token"] not in r.text

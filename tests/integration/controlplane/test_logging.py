"""Access logs are one JSON object per request, carry the request id and route
template, and never contain passwords, tokens or authorization codes."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from controlplane.observability import JsonFormatter
from tests.integration.controlplane.conftest import PASSWORD, bearer, sign_up_and_login


async def test_logs_are_json_with_request_ids_and_no_secrets(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tenantry.controlplane")
    user = await sign_up_and_login(client)
    await client.get("/v1/users/me", headers={**bearer(user), "X-Request-ID": "trace-42"})
    await client.post("/v1/auth/refresh", json={"refresh_token": user["refresh"]})
    await client.post("/v1/auth/login", json={"email": user["email"], "password": "wrong pw!"})
    formatter = JsonFormatter()
    lines = [formatter.format(r) for r in caplog.records if r.name.endswith("access")]
    assert len(lines) >= 5
    entries = [json.loads(line) for line in lines]
    me = next(e for e in entries if e["request_id"] == "trace-42")
    assert me["route"] == "/v1/users/me"
    assert me["status"] == 200
    assert me["actor"]
    failed = [e for e in entries if e["route"] == "/v1/auth/login" and e["status"] == 401]
    assert failed[0]["error_code"] == "unauthenticated"
    text = "\n".join(lines)
    token = user["Authorization"].removeprefix("Bearer ")
    for secret in (PASSWORD, "wrong pw!", token, token.split(".")[2], user["refresh"]):
        assert secret not in text

"""Property-based fuzzing of the billing operations of the OpenAPI schema
(schemathesis + hypothesis) against the real app on real PostgreSQL: whatever the
input, never a 5xx. Half of the requests are aimed at a real organisation with a valid
owner token or the service token, so the fuzzing reaches the services, not only the
authentication layer. (The control-plane fuzz test covers every route too, but needs
Kubernetes; this one runs without it.)"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from controlplane.app import create_app
from controlplane.billing.access import BillingSettings
from controlplane.settings import Settings
from tenantry import internal_api
from tests.integration.billing.conftest import TOKEN
from tests.integration.controlplane.conftest import PASSWORD
from tests.support.fuzzing import cases
from tests.support.fuzzing import operations as fuzz_operations


def _login(client: TestClient) -> tuple[dict[str, str], str]:
    email = "fuzz-billing@example.com"
    client.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
    token = client.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    org = client.post("/v1/orgs", json={"slug": "fuzzbill", "name": "F"}, headers=headers)
    org_id = str(org.json()["id"])
    r = client.post(
        f"/v1/orgs/{org_id}/billing/subscription", json={"plan": "growth"}, headers=headers
    )
    assert r.status_code == 201, r.text
    return headers, org_id


def test_no_billing_operation_answers_5xx(settings: Settings) -> None:
    app = create_app(settings)
    with TestClient(app, base_url="http://cp.test") as client:
        app.state.billing_settings = BillingSettings(internal_token=TOKEN)
        owner, org_id = _login(client)
        service = {"Authorization": f"Bearer {TOKEN}"}
        operations = [
            op
            for op in fuzz_operations(app.openapi())
            if op.path.startswith("/v1/orgs/{org_id}/billing/") or op.path.endswith("/usage")
        ]
        assert len(operations) == 13  # with the internal listener's usage route
        failures: list[str] = []
        statuses: Counter[int] = Counter()
        for operation in operations:

            @cases(20)
            @given(case=operation.as_strategy(), aim=st.sampled_from(["none", "owner", "service"]))
            def check(case: Any, aim: str) -> None:
                if aim != "none" and case.path_parameters is not None:
                    case.path_parameters["org_id"] = org_id
                # Internal routes are served on the internal listener only.
                internal = case.path.startswith(internal_api.PREFIX)
                base = f"http://cp.test:{settings.internal_port}" if internal else "http://cp.test"
                kw = case.as_transport_kwargs(base_url=base)
                headers = dict(kw["headers"])
                if aim != "none":
                    headers.update(owner if aim == "owner" else service)
                r = client.request(
                    kw["method"],
                    kw["url"],
                    headers=headers,
                    params=kw.get("params"),
                    json=kw.get("json"),
                )
                statuses[r.status_code] += 1
                if r.status_code >= 500:
                    failures.append(
                        f"{kw['method']} {kw['url']} -> {r.status_code}: {r.text[:200]}"
                    )

            check()
    assert not failures, "\n".join(failures[:20])
    assert statuses[200] + statuses[201] > 20, statuses
    assert statuses[422] > 0, statuses

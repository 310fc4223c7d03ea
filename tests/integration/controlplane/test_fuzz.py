"""Property-based fuzzing of every operation in the OpenAPI schema (schemathesis +
hypothesis) against the real server process: whatever the input, never a 5xx.

The server runs as ``tenantry controlplane serve`` (uvicorn) on a free loopback port,
with real PostgreSQL, Redis and Kubernetes. Half of the generated requests are aimed at
a real organisation and tenant with a valid token, so the fuzzing reaches the services
and not only the authentication layer.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok

from tenantry.devcluster import services
from tests.integration.controlplane.conftest import PASSWORD
from tests.integration.controlplane.servers import free_port
from tests.support.kube import Kube
from tests.support.wait import scaled, stop_process

# Logging out would end the fuzzer's own session; it is covered in test_auth.
SKIP = {("POST", "/v1/auth/logout")}


@dataclass(frozen=True)
class Target:
    url: str
    headers: dict[str, str]
    org_id: str


@pytest.fixture
def server(database: str, redis_db: str, crds: Kube, tmp_path: Path) -> Iterator[Target]:
    port = free_port()
    log = tmp_path / "controlplane.log"
    env = {
        **os.environ,
        "TENANTRY_CP_DATABASE_URL": database,
        "TENANTRY_CP_REDIS_URL": redis_db,
        "TENANTRY_CP_KUBECONFIG": str(crds.kubeconfig),
        "TENANTRY_CP_ARGON2_TIME_COST": "1",
        "TENANTRY_CP_ARGON2_MEMORY_KIB": "8192",
        "TENANTRY_CP_RATE_LIMIT_PER_IP": "100000",
        "TENANTRY_CP_RATE_LIMIT_PER_IDENTITY": "100000",
        "TENANTRY_CP_RATE_LIMIT_PER_CLIENT": "100000",
        "TENANTRY_CP_METRICS_PORT": str(free_port()),  # not the default: tests run side by side
    }
    proc = services.serve_controlplane(env=env, port=port, log=log, timeout=scaled(120))
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=scaled(30)) as http:
            email = "fuzz@example.com"
            http.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
            token = http.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json()[
                "access_token"
            ]
            headers = {"Authorization": f"Bearer {token}"}
            org_id = http.post("/v1/orgs", json={"slug": "fuzz", "name": "F"}, headers=headers)
            org = org_id.json()["id"]
            subscribe = f"/v1/orgs/{org}/billing/subscription"
            r = http.post(subscribe, json={"plan": "enterprise"}, headers=headers)
            assert r.status_code == 201, r.text
            r = http.post(f"/v1/orgs/{org}/tenants", json={"name": "t1"}, headers=headers)
            assert r.status_code == 201, r.text
        yield Target(url, headers, org)
    finally:
        stop_process(proc, grace=20, what="control plane")


def test_no_operation_answers_5xx(server: Target) -> None:
    raw = httpx.get(f"{server.url}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(raw)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the schema itself must be valid
        operations.append(result.ok())
    assert len(operations) > 30
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for operation in operations:
        if (operation.method.upper(), operation.path) in SKIP:
            continue

        @settings(
            max_examples=15,
            deadline=None,
            database=None,
            derandomize=True,  # the same cases every run: the status assertions can't flake
            phases=[Phase.explicit, Phase.generate],  # report, don't spend minutes shrinking
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(), aim=st.booleans())
        def check(case: Any, aim: bool) -> None:
            if aim and case.path_parameters is not None:
                if "org_id" in case.path_parameters:
                    case.path_parameters["org_id"] = server.org_id
                if "tenant" in case.path_parameters:
                    case.path_parameters["tenant"] = "t1"
            response = case.call(base_url=server.url, headers=server.headers, timeout=scaled(30))
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text[:200]}"
                )

        check()
    assert not failures, "\n".join(failures[:20])
    # The fuzzing got past validation and authorisation, not only bounced off them.
    assert statuses[200] + statuses[201] + statuses[204] > 50, statuses
    assert statuses[422] > 10, statuses

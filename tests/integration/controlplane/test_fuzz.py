"""Property-based fuzzing of every operation in the OpenAPI schema (schemathesis +
hypothesis) against the real server process: whatever the input, never a 5xx.

The server runs as ``tenantry controlplane serve`` (uvicorn) on a free loopback port,
with real PostgreSQL, Redis and Kubernetes. Half of the generated requests are aimed at
a real organisation and tenant with a valid token, so the fuzzing reaches the services
and not only the authentication layer; the panel routes are aimed at a real dashboard
whose panels run on the ClickHouse engine (the loopback endpoint), and their parameters
get a fuzz of their own, drawn from the forms they take (times with any digits in any
field, any variable name and value), where the 500s were.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantry.api.dashboard import TIME_PATTERN
from tenantry.clickhouse.chdb_client import ChdbClient
from tenantry.clickhouse.layout import provision
from tenantry.clickhouse.schema import TenantSchema
from tenantry_dev import services
from tenantry_dev.loopback_server import LoopbackServer
from tests.integration.controlplane.conftest import PASSWORD
from tests.integration.controlplane.servers import free_port
from tests.support.fuzzing import cases
from tests.support.fuzzing import operations as fuzz_operations
from tests.support.kube import Kube
from tests.support.wait import eventually, scaled, stop_process

# Logging out (or ending every session) would end the fuzzer's own session; both are
# covered in test_auth.
SKIP = {("POST", "/v1/auth/logout"), ("DELETE", "/v1/auth/sessions")}


DASHBOARD = "d1"
VARIABLES: list[dict[str, Any]] = [
    {"name": "ev", "type": "custom", "default": "click", "options": ["click", "view"]},
    {"name": "label", "type": "constant", "default": "x"},
    {"name": "step", "type": "interval", "default": "300"},
    {"name": "bucket", "type": "interval", "default": "1h"},
]
PANELS = {
    "per_day": "SELECT toDate(timestamp) AS day, count() AS n FROM events"
    " WHERE event = {ev:String} AND timestamp >= {from:DateTime}"
    " AND timestamp < {to:DateTime64(3)} GROUP BY day ORDER BY day",
    "stepped": "SELECT {step:UInt32} AS s, {bucket:String} AS b, {label:String} AS l",
    "total": "SELECT count() AS n FROM events",
}


@dataclass(frozen=True)
class Target:
    url: str
    headers: dict[str, str]
    org_id: str

    @property
    def panels(self) -> str:
        return f"{self.url}/v1/orgs/{self.org_id}/dashboards/{DASHBOARD}/panels"


def _dashboard(http: httpx.Client, crds: Kube, org: str, headers: dict[str, str]) -> None:
    """A dashboard on tenant t1 whose panels the operator (not running here) vouched for."""
    spec = {
        "tenantRef": {"name": "t1"},
        "title": "Fuzz",
        "refresh": "30s",
        "timeRange": {"from": "now-7d", "to": "now"},
        "variables": VARIABLES,
        "panels": [{"id": i, "title": i, "sql": sql} for i, sql in PANELS.items()],
    }
    r = http.post(
        f"/v1/orgs/{org}/dashboards", json={"name": DASHBOARD, "spec": spec}, headers=headers
    )
    assert r.status_code == 201, r.text
    created = r.json()
    status = {
        "observedGeneration": created["generation"],
        "panels": [{"id": i, "valid": True} for i in PANELS],
    }
    crds.run(
        "patch",
        "dashboards.tenantry.io",
        created["resource_name"],
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )

    def vouched() -> bool:  # the status reaches the server's mirror through its watch
        r = http.get(f"/v1/orgs/{org}/dashboards/{DASHBOARD}/panels/total/data", headers=headers)
        return r.status_code == 200

    eventually(vouched, timeout=60, what="the dashboard status in the server's mirror")


@pytest.fixture
def server(
    database: str,
    redis_db: str,
    crds: Kube,
    loopback: LoopbackServer,
    chdb_client: ChdbClient,
    tmp_path: Path,
) -> Iterator[Target]:
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
        "TENANTRY_CP_RATE_LIMIT_PANEL_QUERIES_PER_ORG": "100000",
        "TENANTRY_CP_METRICS_PORT": str(free_port()),  # not the default: tests run side by side
        "TENANTRY_CP_CLICKHOUSE_URL_OVERRIDE": loopback.url,
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
            org_id = http.post(
                "/v1/orgs",
                json={"slug": f"fuzz{uuid.uuid4().hex[:8]}", "name": "F"},
                headers=headers,
            )
            org = org_id.json()["id"]
            subscribe = f"/v1/orgs/{org}/billing/subscription"
            r = http.post(subscribe, json={"plan": "enterprise"}, headers=headers)
            assert r.status_code == 201, r.text
            r = http.post(f"/v1/orgs/{org}/tenants", json={"name": "t1"}, headers=headers)
            assert r.status_code == 201, r.text
            database_name = "t_" + r.json()["resource_name"].replace("-", "_")
            provision(chdb_client, TenantSchema(database=database_name, retention_days=3650))
            _dashboard(http, crds, org, headers)
        yield Target(url, headers, org)
    finally:
        stop_process(proc, grace=20, what="control plane")


def test_no_operation_answers_5xx(server: Target) -> None:
    raw = httpx.get(f"{server.url}/openapi.json").json()
    operations = fuzz_operations(raw)
    assert len(operations) > 30
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for operation in operations:
        if (operation.method.upper(), operation.path) in SKIP:
            continue

        @cases(15)
        @given(
            case=operation.as_strategy(), aim=st.booleans(), panel=st.sampled_from(sorted(PANELS))
        )
        def check(case: Any, aim: bool, panel: str) -> None:
            if aim and case.path_parameters is not None:
                if "org_id" in case.path_parameters:
                    case.path_parameters["org_id"] = server.org_id
                if "tenant" in case.path_parameters:
                    case.path_parameters["tenant"] = "t1"
                if "panel" in case.path_parameters:  # the panel routes: only reads
                    case.path_parameters["dashboard"] = DASHBOARD
                    case.path_parameters["panel"] = panel
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


# The forms the panel parameters take, with every field free: the Dashboard's time
# pattern generates impossible dates, any year, any zone offset; relative times any
# amount; variables any declared or undeclared name with an option, an interval-shaped
# or an arbitrary value.
def _rfc3339(at: dt.datetime, offset_minutes: int) -> str:
    sign, minutes = ("-" if offset_minutes < 0 else "+"), abs(offset_minutes)
    return at.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


TIMES = st.one_of(
    st.from_regex(TIME_PATTERN, fullmatch=True),
    st.builds(
        _rfc3339,
        st.datetimes(dt.datetime(1960, 1, 1), dt.datetime(2120, 1, 1)),
        st.integers(-(24 * 60 - 1), 24 * 60 - 1),
    ),
    st.builds(lambda n, u: f"now-{n}{u}", st.integers(0, 99999), st.sampled_from("smhdw")),
    st.text(max_size=45),
)
VALUES = st.one_of(
    st.sampled_from(["click", "view", "x", "300", "1h", "5m", ""]),
    st.from_regex(r"[0-9]{1,12}(ms|s|m|h|d|w)?", fullmatch=True),
    st.text(max_size=30),
)
NAMES = st.one_of(
    st.sampled_from([v["name"] for v in VARIABLES] + ["nope", "from", ""]),
    st.text(max_size=8),
)


def _query(
    time_from: str | None,
    time_to: str | None,
    variables: dict[str, str],
    extra: list[tuple[str, str]],
) -> list[tuple[str, str]]:
    times = [("from", time_from), ("to", time_to)]
    return [(k, v) for k, v in times if v is not None] + list(variables.items()) + extra


QUERIES = st.builds(
    _query,
    st.none() | TIMES,
    st.none() | TIMES,
    st.dictionaries(NAMES.map(lambda n: f"var.{n}"), VALUES, max_size=3),
    st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=1)
    | st.lists(st.tuples(st.sampled_from(["from", "var.ev"]), TIMES), max_size=1),
)
# The refusals that are about the query as a whole, not one parameter.
WHOLE_QUERY = (
    "unknown query parameters: ",
    "a query parameter is repeated",
    "from must not be after to",
    "the result exceeds the row limit",
)


def _names_a_parameter(body: dict[str, Any], sent: list[tuple[str, str]]) -> bool:
    error = body["error"]
    keys = {k for k, _ in sent}
    if any(error["message"].startswith(f"{k}: ") for k in keys):
        return True
    if error["message"].startswith(WHOLE_QUERY):
        return True
    locs = [d["loc"] for d in error.get("details", [])]
    return bool(locs) and all(len(loc) > 1 and loc[0] in ("query", "path") for loc in locs)


def test_panel_parameters_never_answer_5xx(server: Target) -> None:
    """Issue 18 item 6, the class: no from/to/var.* the panel routes receive answers 5xx,
    and every 422 names the parameter it refuses."""
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    with httpx.Client(headers=server.headers, timeout=30) as http:

        @cases(400)
        @given(
            panel=st.sampled_from([*sorted(PANELS), "ghost"]),
            route=st.sampled_from(["data", "chart.svg"]),
            query=QUERIES,
        )
        def check(panel: str, route: str, query: list[tuple[str, str]]) -> None:
            try:
                r = http.get(f"{server.panels}/{panel}/{route}", params=tuple(query))
            except httpx.TransportError as err:  # uvicorn drops a connection after a 500
                failures.append(f"{panel}/{route} {query!r} -> {err!r}")
                return
            statuses[r.status_code] += 1
            if r.status_code >= 500:
                failures.append(f"{panel}/{route} {query!r} -> {r.status_code}: {r.text[:200]}")
            elif r.status_code == 422 and not _names_a_parameter(r.json(), query):
                failures.append(f"{panel}/{route} {query!r} -> 422 naming nothing: {r.text[:200]}")

        check()
    assert not failures, "\n".join(failures[:20])
    # Both sides were reached: queries that ran, and refusals.
    assert statuses[200] > 20, statuses
    assert statuses[422] > 50, statuses

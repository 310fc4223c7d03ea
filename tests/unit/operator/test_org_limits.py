"""The operator's plan check (org_limits.py) and the status of a refused Tenant (pure)."""

from __future__ import annotations

import pytest
from tenantry_operator import observe, org_limits
from tenantry_operator.model import TenantModel
from tenantry_operator.normalize import tenant_model
from tenantry_operator.rollout import plan

from tenantry.internal_api import LimitsOut, OrgLimitsOut
from tenantry.internal_client import InternalClient

STARTER = OrgLimitsOut(
    plan="starter",
    limits=LimitsOut(
        max_tenants=2,
        max_shards=2,
        max_replicas=2,
        max_dashboards=10,
        tenant_plans=["starter"],
        retention_days=30,
        events_per_month=1000,
    ),
)


def _model(**spec: object) -> TenantModel:
    body = {"metadata": {"name": "acme", "uid": "u", "generation": 3}, "spec": spec}
    return tenant_model(body)


def test_the_limits_are_the_control_planes_own_answer() -> None:
    """Built by the control plane's billing service from its plan catalogue, read as
    the operator reads the route's JSON."""
    from controlplane.billing import catalog

    answer = OrgLimitsOut(plan="starter", limits=catalog.limits_out("starter"))
    read = OrgLimitsOut.model_validate_json(answer.model_dump_json())
    assert read == answer
    assert org_limits.violation(read, _model(plan="starter"), position=0) is None


def test_a_tenant_that_fits_is_admitted() -> None:
    assert org_limits.violation(STARTER, _model(plan="starter"), position=1) is None


@pytest.mark.parametrize(
    ("spec", "position", "words"),
    [
        ({"plan": "starter"}, 2, ["allows 2 tenants", "2 older ones"]),
        ({"plan": "growth"}, 0, ["spec.plan 'growth'", "allowed: starter"]),
        ({"plan": "starter", "clickhouse": {"shards": 3}}, 0, ["shards is 3", "at most 2"]),
        ({"plan": "starter", "clickhouse": {"replicas": 3}}, 0, ["replicas is 3", "at most 2"]),
        ({"plan": "starter", "retentionDays": 90}, 0, ["retentionDays is 90", "30 days"]),
    ],
)
def test_each_limit_is_named_in_the_refusal(
    spec: dict[str, object], position: int, words: list[str]
) -> None:
    message = org_limits.violation(STARTER, _model(**spec), position=position)
    assert message is not None
    for word in words:
        assert word in message, message


def test_rank_keeps_the_oldest_tenants_in_their_place() -> None:
    peers = [
        ("2026-01-02T00:00:00Z", "b"),
        ("2026-01-01T00:00:00Z", "c"),
        ("2026-01-02T00:00:00Z", "a"),
    ]
    assert [org_limits.rank(n, peers) for n in ("c", "a", "b")] == [0, 1, 2]
    assert org_limits.rank("new", peers) == 3  # not indexed yet: counted after all of them


def test_a_new_tenant_refused_is_phase_refused_and_not_ready() -> None:
    status = observe.refused(None, reason="PlanLimitExceeded", message="too big", generation=4)
    assert status["phase"] == "Refused"
    assert status["observedGeneration"] == 4
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Ready"]["status"] == "False"
    assert conds["Ready"]["reason"] == "PlanLimitExceeded"
    assert conds["Degraded"]["status"] == "True"
    assert conds["Degraded"]["message"] == "too big"
    assert [c["type"] for c in status["conditions"]] == ["Ready", "Degraded"]


def test_a_running_stack_refused_keeps_its_status_and_turns_degraded() -> None:
    running = observe.status(
        observe.Observation(
            model=_model(plan="starter"),
            statefulsets={},
            deployments={},
            rollout=plan([], [], max_shards_in_flight=1),
        ),
        None,
    )
    status = observe.refused(running, reason="PlanLimitExceeded", message="m", generation=5)
    assert status["phase"] == "Degraded"
    assert status["namespace"] == running["namespace"]
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Ready"] == {c["type"]: c for c in running["conditions"]}["Ready"]
    assert conds["Degraded"]["reason"] == "PlanLimitExceeded"
    assert [c["type"] for c in status["conditions"]][:3] == ["Ready", "Progressing", "Degraded"]


def test_refusing_again_changes_nothing_so_nothing_is_written() -> None:
    first = observe.refused(None, reason="PlanLimitExceeded", message="m", generation=1)
    again = observe.refused(first, reason="PlanLimitExceeded", message="m", generation=1)
    assert observe.same(first, again)


async def test_an_unreachable_control_plane_is_asked_once_per_ttl() -> None:
    from tenantry_dev.services import free_port

    client = InternalClient(f"http://127.0.0.1:{free_port()}", token="t")
    source = org_limits.LimitsSource(client, ttl=60)
    calls = 0
    fetch = source._fetch

    async def counting(org_id: str) -> OrgLimitsOut | None:
        nonlocal calls
        calls += 1
        return await fetch(org_id)  # a closed port: connection refused

    source._fetch = counting  # type: ignore[method-assign]
    assert await source.get("org") is None  # nothing known: admitted
    assert await source.get("org") is None
    assert calls == 1
    await client.aclose()

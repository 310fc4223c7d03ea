"""The operator's metrics (pure: the registry and its collector)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from tenantry_operator.metrics import (
    LAST_BACKUP,
    OUTCOMES,
    TENANT_CONDITIONS,
    TENANTS,
    OperatorMetrics,
    address,
    outcome_of,
)


def values(m: OperatorMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(m.render().decode())
        for s in family.samples
    }


def test_tenants_by_phase_and_each_tenants_conditions_follow_the_last_status() -> None:
    m = OperatorMetrics()
    ready = {"type": "Ready", "status": "True"}
    m.observe("a", {"phase": "Ready", "conditions": [ready]})
    m.observe("b", {"phase": "Provisioning", "conditions": [{"type": "Ready", "status": "False"}]})
    m.observe(
        "b", {"phase": "Ready", "conditions": [ready, {"type": "Degraded", "status": "False"}]}
    )
    m.observe("c", None)  # nothing known: not counted
    seen = values(m)
    assert seen[(TENANTS, (("phase", "Ready"),))] == 2
    assert (TENANTS, (("phase", "Provisioning"),)) not in seen
    conditions = {labels: v for (name, labels), v in seen.items() if name == TENANT_CONDITIONS}
    assert conditions == {
        (("namespace", "tenant-a"), ("status", "True"), ("tenant", "a"), ("type", "Ready")): 1,
        (("namespace", "tenant-b"), ("status", "True"), ("tenant", "b"), ("type", "Ready")): 1,
        (("namespace", "tenant-b"), ("status", "False"), ("tenant", "b"), ("type", "Degraded")): 1,
    }
    m.forget("a")
    seen = values(m)
    assert seen[(TENANTS, (("phase", "Ready"),))] == 1
    assert not [labels for (name, labels), _ in seen.items() if ("tenant", "a") in labels]


def test_every_outcome_series_exists_from_the_start_and_writes_count() -> None:
    m = OperatorMetrics()
    seen = values(m)
    for outcome in OUTCOMES:
        assert seen[("tenantry_operator_reconcile_seconds_count", (("outcome", outcome),))] == 0
    m.write("StatefulSet", "apply")
    m.write("StatefulSet", "apply")
    key = ("tenantry_operator_api_writes_total", (("kind", "StatefulSet"), ("verb", "apply")))
    assert values(m)[key] == 2


def test_outcome_and_address() -> None:
    assert outcome_of(converged=True, retry=False) == "converged"
    assert outcome_of(converged=False, retry=False) == "progressing"
    assert outcome_of(converged=False, retry=True) == "retry"
    assert address(":9464") == ("0.0.0.0", 9464)  # noqa: S104 - what an empty host means
    assert address("127.0.0.1:1") == ("127.0.0.1", 1)


def test_last_backup_time_per_tenant() -> None:
    m = OperatorMetrics()
    m.observe("a", {"phase": "Ready", "backup": {"lastSuccessTime": "2026-12-06T03:00:00Z"}})
    m.observe("b", {"phase": "Ready", "backup": {"count": 0}})  # none yet: no series
    m.observe("c", {"phase": "Ready", "backup": {"lastSuccessTime": "not a time"}})
    seen = values(m)
    key = (LAST_BACKUP, (("namespace", "tenant-a"), ("tenant", "a")))
    assert seen[key] == 1796526000.0
    assert [k for k in seen if k[0] == LAST_BACKUP] == [key]

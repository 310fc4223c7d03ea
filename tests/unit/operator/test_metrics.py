"""The operator's metrics (pure: the registry and its collector)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from tenantry_operator.metrics import OUTCOMES, OperatorMetrics, address, outcome_of


def values(m: OperatorMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(m.render().decode())
        for s in family.samples
    }


def test_tenants_by_phase_and_condition_follow_the_last_status() -> None:
    m = OperatorMetrics()
    ready = {"type": "Ready", "status": "True"}
    m.observe("a", {"phase": "Ready", "conditions": [ready]})
    m.observe("b", {"phase": "Provisioning", "conditions": [{"type": "Ready", "status": "False"}]})
    m.observe("b", {"phase": "Ready", "conditions": [ready]})  # b moved on
    m.observe("c", None)  # nothing known: not counted
    seen = values(m)
    assert seen[("tenantry_operator_tenants", (("phase", "Ready"),))] == 2
    assert ("tenantry_operator_tenants", (("phase", "Provisioning"),)) not in seen
    assert (
        seen[("tenantry_operator_tenant_conditions", (("status", "True"), ("type", "Ready")))] == 2
    )
    m.forget("a")
    assert values(m)[("tenantry_operator_tenants", (("phase", "Ready"),))] == 1


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
    key = ("tenantry_operator_tenant_last_backup_timestamp_seconds", (("tenant", "a"),))
    assert seen[key] == 1796526000.0
    assert [k for k in seen if k[0].endswith("last_backup_timestamp_seconds")] == [key]

"""The operator's Prometheus metrics, scraped from the running operator's internal
listener while it reconciles a real Tenant (issue 16)."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_tenant_lifecycle import wait_phase
from tests.support.kube import Kube
from tests.support.operator import OperatorProcess
from tests.support.wait import eventually


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_reconciles_writes_and_tenant_phases_are_counted(
    crds: Kube, make_tenant: Any, operator_process: OperatorProcess
) -> None:
    name = make_tenant("metrics", {"plan": "starter"})
    wait_phase(crds, name, "Ready")

    def scraped() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return samples(operator_process.scrape())

    def ready_counted(seen: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> bool:
        return seen.get(("tenantry_operator_tenants", (("phase", "Ready"),)), 0) >= 1

    seen = eventually(scraped, accept=ready_counted, what="a Ready tenant in the metrics")
    reconciles = sum(
        v for (n, labels), v in seen.items() if n == "tenantry_operator_reconcile_seconds_count"
    )
    assert reconciles >= 1
    applied = seen.get(
        ("tenantry_operator_api_writes_total", (("kind", "StatefulSet"), ("verb", "apply"))), 0
    )
    assert applied >= 1  # the tenant's ClickHouse host and Redis at least
    status_writes = sum(
        v
        for (n, labels), v in seen.items()
        if n == "tenantry_operator_api_writes_total" and ("verb", "patch_status") in labels
    )
    assert status_writes >= 1
    ready = (
        "tenantry_operator_tenant_conditions",
        (("namespace", f"tenant-{name}"), ("status", "True"), ("tenant", name), ("type", "Ready")),
    )
    assert seen.get(ready) == 1
    assert ("tenantry_operator_reconciles_in_flight", ()) in seen
    assert ("tenantry_operator_reconciles_waiting", ()) in seen

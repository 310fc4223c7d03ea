"""NetworkPolicies: deny everything, then allow the flows the stack needs.

Allowed: traffic inside the namespace, DNS to kube-system, event producers to the
ingestion pods (their HTTP port, 8080, from anywhere: they are the product's public entry;
not their metrics port), the
platform namespaces (operator, control plane) to every pod, and, when backups are
configured, ClickHouse to the object store (the BACKUP statement runs in the server).
"""

from __future__ import annotations

from typing import Any

from tenantry_operator import model as m
from tenantry_operator.builders import common, ingestion, render

COMPONENT = "network"


def network_policies(model: m.TenantModel) -> list[common.Manifest]:
    def meta(name: str) -> dict[str, Any]:
        return common.metadata(model, name=name, component=COMPONENT)

    return render.objects(
        "network/networkpolicy.yaml.j2",
        meta=meta,
        ingestion_selector=common.selector(model, "ingestion"),
        ingestion_port=ingestion.PORT,
        clickhouse_selector=common.selector(model, "clickhouse"),
        platform_namespaces=list(model.platform_namespaces),
        backup=model.backup is not None,
    )


def objects(model: m.TenantModel) -> list[common.Manifest]:
    return network_policies(model)

"""NetworkPolicies: deny everything, then allow the flows the stack needs.

Allowed: traffic inside the namespace, DNS to kube-system, event producers to the
ingestion pods (their HTTP port, 8080, from anywhere: they are the product's public entry;
not their metrics port), the
platform namespaces (operator, control plane) to every pod, the ingestion pods to the
control plane's internal listener (the port of ``TENANTRY_CONTROLPLANE_URL``, in the
platform namespaces; the Service's port and the pod's must agree, as the chart's do,
since policies may match either), the monitoring namespaces
(Prometheus; none unless the operator is told, ``TENANTRY_MONITORING_NAMESPACES``) to the
metrics port of each component that serves one and to nothing else, and, when backups
are configured, ClickHouse and the backup and restore jobs to the object store (the
BACKUP and RESTORE work runs in the server; the backup job writes the manifest and
deletes expired backups, the restore job reads the manifest).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tenantry_operator import model as m
from tenantry_operator.builders import (
    backup,
    clickhouse,
    common,
    ingestion,
    keeper,
    redis,
    render,
    restore,
)

COMPONENT = "network"


def scrape_targets(model: m.TenantModel) -> list[dict[str, Any]]:
    """Each component with a metrics port: the pods (selector) and that one port."""
    ports = {
        ingestion.COMPONENT: ingestion.METRICS_PORT,
        clickhouse.COMPONENT: clickhouse.METRICS_PORT,
        redis.COMPONENT: redis.METRICS_PORT,
    }
    if keeper.enabled(model):
        ports[keeper.COMPONENT] = keeper.METRICS_PORT
    return [
        {"component": name, "selector": common.selector(model, name), "port": port}
        for name, port in ports.items()
    ]


def controlplane_port(url: str | None) -> int | None:
    """The TCP port of the control plane's internal listener, from its URL (None: none)."""
    if not url:
        return None
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


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
        controlplane_port=controlplane_port(model.controlplane_url),
        monitoring_namespaces=list(model.monitoring_namespaces),
        scrape_targets=scrape_targets(model),
        backup=model.backup is not None,
        backup_egress=[
            {"key": key, "operator": "In", "values": [value]}
            for key, value in common.selector(model, "clickhouse").items()
            if key != m.LABEL_COMPONENT
        ]
        + [
            {
                "key": m.LABEL_COMPONENT,
                "operator": "In",
                "values": ["clickhouse", backup.COMPONENT, restore.COMPONENT],
            }
        ],
    )


def objects(model: m.TenantModel) -> list[common.Manifest]:
    return network_policies(model)

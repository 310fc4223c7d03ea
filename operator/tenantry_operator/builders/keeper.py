"""ClickHouse Keeper: the coordination service replicated tables need.

Rendered only when the model runs Keeper (replicas > 0; normalize decides that: exactly
when ClickHouse shards have replicas, since the schema's DDL runs host by host and
never needs Keeper by itself). Nodes find each other through the headless Service's
per-pod DNS names, which is why raft_configuration can be written before any pod runs.
The pod template carries a hash of the whole Keeper config, so a change to it (such as
a different node count) restarts the nodes, which read it only at start.
"""

from __future__ import annotations

from typing import Any

from tenantry_operator import model as m
from tenantry_operator.builders import common, render

COMPONENT = "keeper"
CLIENT_PORT = 9181
RAFT_PORT = 9234
# Keeper's Prometheus endpoint (keeper_server.xml <prometheus>): the container port
# "metrics", in no Service; only the monitoring namespaces may reach it (network.py).
METRICS_PORT = 9363


def enabled(model: m.TenantModel) -> bool:
    return model.keeper.replicas > 0


def node_hosts(model: m.TenantModel) -> list[str]:
    """DNS names of the Keeper nodes (keeper-<i>.keeper-headless.<ns>.svc.cluster.local)."""
    return [
        f"keeper-{i}.keeper-headless.{model.namespace}.svc.cluster.local"
        for i in range(model.keeper.replicas)
    ]


def server_xml(model: m.TenantModel) -> str:
    nodes = [{"id": i + 1, "host": host} for i, host in enumerate(node_hosts(model))]
    return render.text("keeper/keeper_server.xml.j2", nodes=nodes, metrics_port=METRICS_PORT)


def config_hash(model: m.TenantModel) -> str:
    """What a Keeper node reads only at start: image, resources and its config file."""
    return common.digest(
        {
            "image": model.keeper.image,
            "resources": common.resources(model.keeper.resources),
            "config": server_xml(model),
        }
    )


def config_maps(model: m.TenantModel) -> list[common.Manifest]:
    if not enabled(model):
        return []
    return [
        render.one(
            "keeper/configmap.yaml.j2",
            metadata=common.metadata(model, name="keeper-config", component=COMPONENT),
            keeper_server_xml=server_xml(model),
        )
    ]


def services(model: m.TenantModel) -> list[common.Manifest]:
    if not enabled(model):
        return []
    return render.objects(
        "keeper/service.yaml.j2",
        headless_metadata=common.metadata(model, name="keeper-headless", component=COMPONENT),
        client_metadata=common.metadata(model, name="keeper", component=COMPONENT),
        selector=common.selector(model, COMPONENT),
    )


def statefulsets(model: m.TenantModel) -> list[common.Manifest]:
    if not enabled(model):
        return []
    keeper = model.keeper
    selector = common.selector(model, COMPONENT)
    context: dict[str, Any] = {
        "metadata": common.metadata(model, name="keeper", component=COMPONENT),
        "replicas": common.replicas(model, keeper.replicas),
        "pvc_retention": common.pvc_retention(model),
        "selector": selector,
        "pod_labels": common.labels(model, COMPONENT),
        "hash_annotation": m.ANNOTATION_CONFIG_HASH,
        "config_hash": config_hash(model),
        "pod_security": common.pod_security_context(common.UID_CLICKHOUSE),
        "affinity": common.spread(selector),
        "image": keeper.image,
        "resources": common.resources(keeper.resources),
        "container_security": common.container_security_context(),
        "metrics_port": METRICS_PORT,
        "volume_claim": common.volume_claim(
            model, name="data", component=COMPONENT, volume=keeper.volume
        ),
    }
    return [render.one("keeper/statefulset.yaml.j2", **context)]


def pod_disruption_budgets(model: m.TenantModel) -> list[common.Manifest]:
    if not enabled(model):
        return []
    return [
        render.one(
            "keeper/poddisruptionbudget.yaml.j2",
            metadata=common.metadata(model, name="keeper", component=COMPONENT),
            selector=common.selector(model, COMPONENT),
        )
    ]


def objects(model: m.TenantModel) -> list[common.Manifest]:
    return [
        *config_maps(model),
        *services(model),
        *statefulsets(model),
        *pod_disruption_budgets(model),
    ]

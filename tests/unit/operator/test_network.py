"""The tenant's NetworkPolicies as Kubernetes evaluates them: who reaches which port.

A small evaluator of the ingress rules the builders render (namespace and pod
selectors, ports; it refuses any shape it does not know, so a new kind of rule cannot
pass unread) answers, for a client pod in some namespace, which (component, port) of
the tenant's pods it may open. The monitoring namespaces must reach exactly the
metrics ports, and nothing else beyond what anyone may reach (ingestion's public port).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from tenantry_operator import builders
from tenantry_operator import model as m
from tenantry_operator.builders import clickhouse, ingestion, keeper, network, redis

from tests.support import selectors
from tests.unit.operator import fixtures

Obj = dict[str, Any]
MONITORING = "monitoring"
PUBLIC = {("ingestion", ingestion.PORT)}  # the producers' entry: open to any client
WORKLOADS = {"StatefulSet", "Deployment"}


def _peer_matches(peer: Obj, *, namespace: str, tenant_namespace: str) -> bool:
    unknown = set(peer) - {"namespaceSelector", "podSelector"}
    assert not unknown, f"peer shape not understood: {unknown}"
    if "namespaceSelector" in peer:
        ns_labels = {"kubernetes.io/metadata.name": namespace}
        if not selectors.matches(peer["namespaceSelector"], ns_labels):
            return False
    elif namespace != tenant_namespace:  # a podSelector alone: the policy's namespace
        return False
    # client pods here carry no label a rule could need: only {} selects them
    return bool(peer.get("podSelector", {}) == {})


def reachable(objects: list[Obj], *, namespace: str) -> set[tuple[str, int]]:
    """(component, container port) of the tenant's pods that a client pod in
    ``namespace`` may open, given every NetworkPolicy rendered."""
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    tenant_namespace = policies[0]["metadata"]["namespace"]
    out: set[tuple[str, int]] = set()
    for workload in (o for o in objects if o["kind"] in WORKLOADS):
        pod = workload["spec"]["template"]
        labels = pod["metadata"]["labels"]
        component = labels[m.LABEL_COMPONENT]
        ports = {p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        selecting = [
            p
            for p in policies
            if "Ingress" in p["spec"]["policyTypes"]
            and selectors.matches(p["spec"]["podSelector"], labels)
        ]
        assert selecting, f"{component}: no policy isolates it"
        for port in ports:
            for policy in selecting:
                for rule in policy["spec"].get("ingress", []):
                    peers = rule.get("from")
                    from_ok = peers is None or any(
                        _peer_matches(peer, namespace=namespace, tenant_namespace=tenant_namespace)
                        for peer in peers
                    )
                    rule_ports = rule.get("ports")
                    port_ok = rule_ports is None or any(
                        r["port"] == port and r["protocol"] == "TCP" for r in rule_ports
                    )
                    if from_ok and port_ok:
                        out.add((component, port))
    return out


def _model(name: str, monitoring: tuple[str, ...]) -> m.TenantModel:
    return dataclasses.replace(fixtures.model(name), monitoring_namespaces=monitoring)


def test_monitoring_reaches_exactly_the_metrics_ports() -> None:
    objects = builders.build(_model("tenant-sharded", (MONITORING, "observability")))
    metrics = {
        ("ingestion", ingestion.METRICS_PORT),
        ("clickhouse", clickhouse.METRICS_PORT),
        ("keeper", keeper.METRICS_PORT),
        ("redis", redis.METRICS_PORT),
    }
    for namespace in (MONITORING, "observability"):
        assert reachable(objects, namespace=namespace) == metrics | PUBLIC
    # anyone else: the public port only; the platform and the tenant itself: everything
    assert reachable(objects, namespace="somebody-else") == PUBLIC
    platform = reachable(objects, namespace=fixtures.PLATFORM_NAMESPACES[0])
    assert metrics | {("clickhouse", clickhouse.HTTP_PORT)} <= platform


@pytest.mark.parametrize("name", sorted(fixtures.EXAMPLES))
def test_no_monitoring_namespace_no_scrape_rule(name: str) -> None:
    objects = builders.build(fixtures.model(name))  # the default: no monitoring namespace
    names = [o["metadata"]["name"] for o in objects if o["kind"] == "NetworkPolicy"]
    assert not [n for n in names if n.startswith("allow-monitoring")]
    assert reachable(objects, namespace=MONITORING) == PUBLIC


def test_one_policy_per_component_with_a_metrics_port() -> None:
    without_keeper = _model("tenant-starter", (MONITORING,))
    assert not keeper.enabled(without_keeper)
    objects = builders.build(without_keeper)
    policies = {
        o["metadata"]["name"]: o
        for o in objects
        if o["metadata"]["name"].startswith("allow-monitoring-")
    }
    assert set(policies) == {
        "allow-monitoring-ingestion",
        "allow-monitoring-clickhouse",
        "allow-monitoring-redis",
    }
    assert reachable(objects, namespace=MONITORING) == PUBLIC | {
        ("ingestion", ingestion.METRICS_PORT),
        ("clickhouse", clickhouse.METRICS_PORT),
        ("redis", redis.METRICS_PORT),
    }
    (rule,) = policies["allow-monitoring-clickhouse"]["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": clickhouse.METRICS_PORT}]
    (rule,) = policies["allow-monitoring-redis"]["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": redis.METRICS_PORT}]
    assert [t["component"] for t in network.scrape_targets(without_keeper)] == [
        "ingestion",
        "clickhouse",
        "redis",
    ]

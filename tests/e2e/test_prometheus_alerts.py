"""A real Prometheus scrapes the running operator and evaluates the chart's alert rules:
a Tenant that goes Degraded raises ``TenantryTenantDegraded`` for that tenant, pending
then firing (issue 16).

What is the chart's and what is the test's:
- the scrape job is translated from the operator PodMonitor the chart renders (path,
  ``honorLabels``, relabelings); only the target is the operator process on loopback
  (kwok runs no pod), labelled as prometheus-operator labels a pod's target (its
  namespace is the operator's, which ``honorLabels`` must not let replace the tenant's);
- the rules are the chart's PrometheusRule, unchanged but for the ``for:`` of the alert
  under test (10 minutes in production, seconds here) and the intervals (1 s).
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

from tenantry_dev import tools
from tenantry_dev.services import Prometheus
from tests.e2e.test_never_stuck import degraded
from tests.support.kube import Kube
from tests.support.operator import OperatorProcess
from tests.support.wait import eventually, scaled
from tests.unit.chart.helm import NAMESPACE, find, one, render

Obj = dict[str, Any]
ALERT = "TenantryTenantDegraded"
FOR = "10s"  # the test's; the chart says 10m
MONITORING = {
    "monitoring": {"podMonitors": {"enabled": True}, "rules": {"enabled": True}},
}


@functools.cache
def _chart() -> tuple[Obj, ...]:
    return tuple(render(MONITORING))


def scrape_job(monitor: Obj, target: str, target_labels: dict[str, str]) -> Obj:
    """The scrape config of a PodMonitor's one endpoint, for a static ``target`` carrying
    the labels prometheus-operator would give the pod's target."""
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    meta = monitor["metadata"]
    return {
        "job_name": f"podMonitor/{meta['namespace']}/{meta['name']}/0",
        "honor_labels": bool(endpoint.get("honorLabels", False)),
        "metrics_path": endpoint.get("path", "/metrics"),
        "static_configs": [{"targets": [target], "labels": target_labels}],
        "relabel_configs": [
            {
                "source_labels": r["sourceLabels"],
                "target_label": r["targetLabel"],
                "action": r.get("action", "replace").lower(),
            }
            for r in endpoint.get("relabelings", [])
        ],
    }


def test_rule_override_changes_only_the_duration() -> None:
    """The rules the test loads are the chart's: only ``for`` of the alert differs."""
    (chart_rule,) = find(list(_chart()), "PrometheusRule")
    ours = _rules()
    theirs = chart_rule["spec"]["groups"]
    assert [g["name"] for g in ours] == [g["name"] for g in theirs]
    for mine, chart in zip(ours, theirs, strict=True):
        for a, b in zip(mine["rules"], chart["rules"], strict=True):
            if a.get("alert") == ALERT:
                assert (a["for"], b["for"]) == (FOR, "10m")
                a = {k: v for k, v in a.items() if k != "for"}
                b = {k: v for k, v in b.items() if k != "for"}
            assert a == b


def _rules() -> list[Obj]:
    (rule,) = find(list(_chart()), "PrometheusRule")
    groups = yaml.safe_load(yaml.safe_dump(rule["spec"]["groups"]))  # a deep copy
    for group in groups:
        for r in group["rules"]:
            if r.get("alert") == ALERT:
                r["for"] = FOR
    return list(groups)


@pytest.fixture
def prometheus(operator_process: OperatorProcess, tmp_path: Path) -> Any:
    monitor = one(list(_chart()), "PodMonitor", "t-tenantry-operator")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yaml"],
        "scrape_configs": [
            scrape_job(
                monitor,
                f"127.0.0.1:{operator_process.metrics_port}",
                {"namespace": NAMESPACE, "pod": "t-tenantry-operator-0"},
            )
        ],
    }
    binary = tools.ensure(("prometheus",))["prometheus"]
    server = Prometheus.start(
        tmp_path / "prometheus", config, binary=binary, files={"rules.yaml": {"groups": _rules()}}
    )
    try:
        yield server
    finally:
        server.stop()


def _time(text: str) -> float:
    """Seconds since the epoch of a time the API gives (RFC 3339, nanoseconds)."""
    return dt.datetime.fromisoformat(text).timestamp()


def _states(server: Prometheus, tenant: str) -> list[Obj]:
    return [
        a
        for a in server.api("alerts")["alerts"]
        if a["labels"].get("alertname") == ALERT and a["labels"].get("tenant") == tenant
    ]


def test_a_degraded_tenant_raises_its_alert_pending_then_firing(
    crds: Kube, make_tenant: Any, prometheus: Prometheus
) -> None:
    def scraped() -> bool:
        targets = prometheus.api("targets")["activeTargets"]  # empty until discovered
        return [t["health"] for t in targets] == ["up"]

    eventually(scraped, what="the operator target up", timeout=scaled(30))
    groups = prometheus.api("rules")["groups"]
    loaded = sum(len(g["rules"]) for g in groups)
    assert loaded == sum(len(g["rules"]) for g in _rules()) > 0  # all the chart's rules

    # Ten hosts of 2 cores exceed the starter plan's quota: refused, Degraded at once.
    name = make_tenant("prom-broken", {"clickhouse": {"shards": 10}})
    degraded(crds, name, "QuotaExceeded")
    (pending,) = eventually(
        lambda: _states(prometheus, name), what=f"{ALERT} for {name}", timeout=scaled(30)
    )
    assert pending["state"] == "pending"
    (firing,) = eventually(
        lambda: [a for a in _states(prometheus, name) if a["state"] == "firing"],
        what=f"{ALERT} firing for {name}",
        timeout=scaled(30),
    )
    assert firing["activeAt"] == pending["activeAt"]  # the same alert, moved on
    # Prometheus's own account: fired no sooner than `for` after it became active
    (rule,) = [
        r for g in prometheus.api("rules")["groups"] for r in g["rules"] if r["name"] == ALERT
    ]
    assert rule["duration"] == 10
    assert rule["state"] == "firing"
    (held,) = [a for a in rule["alerts"] if a["labels"].get("tenant") == name]
    assert _time(rule["lastEvaluation"]) - _time(held["activeAt"]) >= 10
    labels = firing["labels"]
    assert labels["tenant"] == name
    assert labels["namespace"] == f"tenant-{name}"  # the tenant's, not the operator's
    assert labels["severity"] == "warning"
    assert firing["annotations"]["summary"] == (
        f"Tenant {name} (tenant-{name}) Degraded for more than 10 minutes"
    )

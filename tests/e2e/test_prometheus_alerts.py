"""A real Prometheus scrapes the running operator and a tenant's ingestion and evaluates
the chart's alert rules: a Tenant that goes Degraded raises ``TenantryTenantDegraded``
for that tenant, pending then firing (issue 16).

What is the chart's and what is the test's:
- the scrape jobs are translated from the operator's and the tenants' PodMonitors the
  chart renders (path, ``honorLabels``, relabelings); only the targets are processes on
  loopback (kwok runs no pod): the operator and ``python -m ingestion`` on its internal
  listener, each labelled as Kubernetes discovery and prometheus-operator would label
  the pod (the operator's namespace, which ``honorLabels`` must not let replace the
  tenant's; the ingestion pod's labels as the operator renders them, from which the
  chart's relabelling names the tenant and component);
- the rules are the chart's PrometheusRule, unchanged but for the ``for:`` of the alert
  under test (10 minutes in production, seconds here) and the intervals (1 s).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import re
import secrets
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from tenantry_operator import builders, normalize
from tenantry_operator import model as m

from ingestion import metrics as im
from ingestion import redis_exporter as rx
from ingestion.settings import key_digest
from tenantry import contract
from tenantry_dev import tools
from tenantry_dev.loopback_server import LoopbackServer
from tenantry_dev.services import Prometheus, RedisServer, free_port
from tests.conftest import LOOPBACK_WRITER_PASSWORD
from tests.e2e.test_never_stuck import degraded
from tests.support.kube import Kube
from tests.support.operator import OperatorProcess
from tests.support.wait import eventually, scaled, stop_process
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
        "relabel_configs": [_relabel(r) for r in endpoint.get("relabelings", [])],
    }


RELABEL_FIELDS = {
    "sourceLabels": "source_labels",
    "targetLabel": "target_label",
    "separator": "separator",
    "regex": "regex",
    "replacement": "replacement",
    "modulus": "modulus",
}


def _relabel(rule: Obj) -> Obj:
    """A prometheus-operator relabeling as Prometheus's relabel_config; a field this
    translation does not know fails the test rather than being dropped."""
    unknown = set(rule) - set(RELABEL_FIELDS) - {"action"}
    assert not unknown, f"relabeling fields not translated: {unknown}"
    out = {RELABEL_FIELDS[k]: v for k, v in rule.items() if k in RELABEL_FIELDS}
    return {**out, "action": str(rule.get("action", "replace")).lower()}


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


def _pod_template(tenant: Obj, component: str) -> tuple[str, Obj]:
    """The namespace and pod template the operator renders for ``component`` of
    ``tenant`` (the object as the API server holds it)."""
    for obj in builders.build(normalize.tenant_model(tenant)):
        template = obj.get("spec", {}).get("template")
        if template and template["metadata"]["labels"].get(m.LABEL_COMPONENT) == component:
            return obj["metadata"]["namespace"], template
    raise AssertionError(f"no {component} pod rendered")


def _pod_meta(namespace: str, name: str, labels: dict[str, str]) -> dict[str, str]:
    """The labels Kubernetes service discovery gives a pod's target, as static labels."""
    meta = {"namespace": namespace, "pod": name}  # what prometheus-operator sets
    for key, value in labels.items():
        meta["__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)] = value
    return meta


@contextlib.contextmanager
def _tenant_processes(
    tenant: str, loopback: LoopbackServer, folder: Path
) -> Iterator[tuple[int, int]]:
    """``python -m ingestion`` for ``tenant`` on its own Redis, and the Redis exporter
    sidecar's command beside it; yields their metrics ports (internal listeners)."""
    password = secrets.token_hex(16)
    redis = RedisServer.start(folder / "redis", password=password)
    metrics_port, exporter_port = free_port(), free_port()
    env = {
        **os.environ,
        "TENANTRY_TENANT": tenant,
        "TENANTRY_LISTEN": f"127.0.0.1:{free_port()}",
        "TENANTRY_METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
        "TENANTRY_REDIS_HOST": "127.0.0.1",
        "TENANTRY_REDIS_PORT": str(redis.port),
        "TENANTRY_REDIS_PASSWORD": password,
        "TENANTRY_CLICKHOUSE_URL": loopback.url,
        "TENANTRY_CLICKHOUSE_USER": "writer",
        "TENANTRY_CLICKHOUSE_PASSWORD": LOOPBACK_WRITER_PASSWORD,
        "TENANTRY_INGEST_KEYS": key_digest(contract.new_api_key()[0]),  # no events sent
    }
    exporter_env = {**env, "TENANTRY_METRICS_LISTEN": f"127.0.0.1:{exporter_port}"}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with (folder / "ingestion.log").open("ab") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "ingestion"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "tenantry_cli", "redis-exporter"],
                    env=exporter_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        yield metrics_port, exporter_port
    finally:
        for proc in procs:
            stop_process(proc, what=str(proc.args))
        redis.stop()


@contextlib.contextmanager
def _prometheus(jobs: list[Obj], folder: Path) -> Iterator[Prometheus]:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yaml"],
        "scrape_configs": jobs,
    }
    binary = tools.ensure(("prometheus",))["prometheus"]
    server = Prometheus.start(
        folder / "prometheus", config, binary=binary, files={"rules.yaml": {"groups": _rules()}}
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
    crds: Kube,
    make_tenant: Any,
    operator_process: OperatorProcess,
    loopback: LoopbackServer,
    tmp_path: Path,
) -> None:
    name = make_tenant("prom-broken", {})  # broken once Prometheus watches
    chart = list(_chart())
    tenant = crds.get("tenant", name)
    namespace, ingestion_pod = _pod_template(tenant, "ingestion")
    _, redis_pod = _pod_template(tenant, "redis")
    tenants_monitor = one(chart, "PodMonitor", "t-tenantry-tenants")
    with (
        _tenant_processes(name, loopback, tmp_path) as (ingestion_port, exporter_port),
        _prometheus(
            [
                scrape_job(
                    one(chart, "PodMonitor", "t-tenantry-operator"),
                    f"127.0.0.1:{operator_process.metrics_port}",
                    _pod_meta(NAMESPACE, "t-tenantry-operator-0", {}),
                ),
                scrape_job(
                    tenants_monitor,
                    f"127.0.0.1:{ingestion_port}",
                    _pod_meta(namespace, "ingestion-0", ingestion_pod["metadata"]["labels"]),
                ),
                {
                    **scrape_job(
                        tenants_monitor,
                        f"127.0.0.1:{exporter_port}",
                        _pod_meta(namespace, "redis-0", redis_pod["metadata"]["labels"]),
                    ),
                    "job_name": "podMonitor/tenants/redis",  # static targets: a job each
                },
            ],
            tmp_path,
        ) as prometheus,
    ):
        _raises_the_alert(prometheus, crds, name)
        # ingestion's series, through the tenants' PodMonitor relabelling, name the tenant
        (backlog,) = prometheus.api(f"query?query={im.BACKLOG}")["result"]
        assert backlog["metric"]["tenant"] == name
        assert backlog["metric"]["namespace"] == f"tenant-{name}"
        assert backlog["metric"]["component"] == "ingestion"
        # and the Redis exporter sidecar's, through the same PodMonitor
        (up,) = prometheus.api(f"query?query={rx.UP}")["result"]
        assert up["metric"]["tenant"] == name
        assert up["metric"]["namespace"] == f"tenant-{name}"
        assert up["metric"]["component"] == "redis"
        assert up["value"][1] == "1"  # it reached Redis with the password


def _alert_history(prometheus: Prometheus, tenant: str, state: str) -> list[float]:
    """When the ``ALERTS`` series of the alert for ``tenant`` in ``state`` had samples
    over the last 10 minutes."""
    selector = f'ALERTS{{alertname="{ALERT}",tenant="{tenant}",alertstate="{state}"}}[10m]'
    result = prometheus.api("query?query=" + urllib.parse.quote(selector))["result"]
    return [float(t) for series in result for t, _ in series["values"]]


def _raises_the_alert(prometheus: Prometheus, crds: Kube, name: str) -> None:
    def scraped() -> bool:
        targets = prometheus.api("targets")["activeTargets"]  # empty until discovered
        return [t["health"] for t in targets] == ["up"] * 3

    eventually(scraped, what="the operator, ingestion and Redis targets up", timeout=scaled(60))
    groups = prometheus.api("rules")["groups"]
    loaded = sum(len(g["rules"]) for g in groups)
    assert loaded == sum(len(g["rules"]) for g in _rules()) > 0  # all the chart's rules

    assert _states(prometheus, name) == []  # healthy so far
    # Ten hosts of 2 cores exceed the starter plan's quota: refused, Degraded at once.
    crds.run("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"clickhouse":{"shards":10}}}')
    degraded(crds, name, "QuotaExceeded")
    (seen,) = eventually(
        lambda: _states(prometheus, name), what=f"{ALERT} for {name}", timeout=scaled(30)
    )
    (firing,) = eventually(
        lambda: [a for a in _states(prometheus, name) if a["state"] == "firing"],
        what=f"{ALERT} firing for {name}",
        timeout=scaled(30),
    )
    assert firing["activeAt"] == seen["activeAt"]  # the same alert throughout
    # Prometheus's record of it (its ALERTS series): pending first, then firing
    pending, fired = (_alert_history(prometheus, name, state) for state in ("pending", "firing"))
    assert pending, "never pending"
    assert max(pending) < min(fired)
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

"""The chart's monitoring objects (issue 16): PodMonitors and the PrometheusRule.

Each is checked with the real thing where one can run here: the objects against the
prometheus-operator's own CRD schemas (from its Go module), the rules with promtool
(built from github.com/prometheus/prometheus by scripts/tools.sh): ``check rules``, and
``test rules`` with, for every alert, one case where it fires and one where it stays
quiet. The PodMonitors must select the pods the operator and the chart render, on their
``metrics`` port.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from tenantry_operator import builders
from tenantry_operator import metrics as om
from tenantry_operator import model as m

from controlplane import observability as cp
from ingestion import metrics as im
from ingestion import redis_exporter as rx
from tenantry import contract
from tests.support import selectors
from tests.support.wait import scaled
from tests.unit.chart import crds
from tests.unit.chart.helm import NAMESPACE, find, one, render
from tests.unit.operator import fixtures

Obj = dict[str, Any]
ON = {
    "monitoring": {
        "labels": {"release": "kube-prometheus-stack"},
        "podMonitors": {"enabled": True},
        "rules": {"enabled": True},
    }
}
MONITORING_KINDS = ("PodMonitor", "PrometheusRule")
SCRAPED = {"ingestion", "clickhouse", "keeper", "redis"}


@functools.cache
def promtool() -> Path:
    from tenantry_dev import tools

    return tools.ensure(("promtool",))["promtool"]


@functools.cache
def _on() -> tuple[Obj, ...]:
    return tuple(render(ON))


def _metrics_ports(pod_spec: Obj) -> list[int]:
    return [
        p["containerPort"]
        for c in pod_spec["containers"]
        for p in c.get("ports", [])
        if p["name"] == "metrics"
    ]


# -- what the chart renders ------------------------------------------------------------


def test_off_by_default() -> None:
    assert not [o for o in render() if o["kind"] in MONITORING_KINDS]


def test_objects_fit_the_prometheus_operator_crds() -> None:
    objs = [o for o in _on() if o["kind"] in MONITORING_KINDS]
    assert sorted(o["kind"] for o in objs) == ["PodMonitor"] * 3 + ["PrometheusRule"]
    for obj in objs:
        crds.validate(obj)
        assert obj["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert obj["metadata"]["namespace"] == NAMESPACE


def test_the_crd_schemas_refuse_what_prometheus_operator_would() -> None:
    (monitor, *_) = find(list(_on()), "PodMonitor")
    unknown = {**monitor, "spec": {**monitor["spec"], "podMetricEndpoints": []}}  # a typo
    with pytest.raises(jsonschema.ValidationError):
        crds.validate(unknown)
    (rule,) = find(list(_on()), "PrometheusRule")
    wrong = {**rule, "spec": {"groups": [{"name": "g", "rules": [{"alert": "A"}]}]}}  # no expr
    with pytest.raises(jsonschema.ValidationError):
        crds.validate(wrong)


@pytest.mark.parametrize("component", ["operator", "controlplane"])
def test_platform_podmonitors_select_their_pods_metrics_port(component: str) -> None:
    objs = list(_on())
    monitor = one(objs, "PodMonitor", f"t-tenantry-{component}")
    deployment = one(objs, "Deployment", f"t-tenantry-{component}")
    pod = deployment["spec"]["template"]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert selectors.matches(monitor["spec"]["selector"], pod["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "metrics"
    assert len(_metrics_ports(pod["spec"])) == 1
    # the operator's per-tenant series keep their tenant's namespace label
    assert endpoint.get("honorLabels", False) == (component == "operator")


def test_tenant_podmonitor_selects_exactly_the_pods_with_metrics() -> None:
    """Over the operator's own rendering of a sharded tenant: ingestion, every ClickHouse
    host and Keeper are selected and have a ``metrics`` port; nothing else is selected."""
    monitor = one(list(_on()), "PodMonitor", "t-tenantry-tenants")
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    selected: set[str] = set()
    for obj in builders.build(fixtures.model("tenant-sharded")):
        if obj["kind"] not in {"StatefulSet", "Deployment", "CronJob"}:
            continue
        template = obj["spec"].get("jobTemplate", {}).get("spec", obj["spec"])["template"]
        labels = template["metadata"]["labels"]
        if selectors.matches(monitor["spec"]["selector"], labels):
            selected.add(labels[m.LABEL_COMPONENT])
            assert len(_metrics_ports(template["spec"])) == 1, obj["metadata"]["name"]
    assert selected == SCRAPED
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "metrics"
    targets = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
    assert targets == {
        "tenant": ["__meta_kubernetes_pod_label_tenantry_io_tenant"],
        "component": ["__meta_kubernetes_pod_label_app_kubernetes_io_component"],
    }


def test_tenant_podmonitor_can_be_left_out() -> None:
    objs = render({"monitoring": {"podMonitors": {"enabled": True, "tenants": False}}})
    assert sorted(o["metadata"]["name"] for o in find(objs, "PodMonitor")) == [
        "t-tenantry-controlplane",
        "t-tenantry-operator",
    ]


# -- the rules, with promtool ----------------------------------------------------------


def _rules_file(tmp_path: Path, values: Obj | None = None) -> Path:
    (rule,) = find(render(values or ON), "PrometheusRule")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    return path


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool()), *args], capture_output=True, text=True, timeout=scaled(120), check=False
    )


def test_promtool_checks_the_rules(tmp_path: Path) -> None:
    done = _promtool("check", "rules", str(_rules_file(tmp_path)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 11 rules found" in done.stdout, done.stdout


def test_promtool_refuses_a_broken_expression(tmp_path: Path) -> None:
    """The check above can fail: the same file with one expression broken."""
    path = _rules_file(tmp_path)
    path.write_text(path.read_text().replace("sum(rate(", "sum(rate((", 1))
    done = _promtool("check", "rules", str(path))
    assert done.returncode != 0
    assert "parse error" in done.stdout + done.stderr


W = {"severity": "warning"}
Series = list[tuple[str, str]]
Case = tuple[Series, str, list[Obj]]  # input series, eval time, expected alerts
# The series are named by the code that exports them (one definition): a rule that reads
# a name no component exports fails these tests. ClickHouse's and the kubelet's names
# are theirs.
LAG = "ClickHouseAsyncMetrics_ReplicasMaxAbsoluteDelay"
USED = "kubelet_volume_stats_used_bytes"
CAPACITY = "kubelet_volume_stats_capacity_bytes"
TENANT_ALERT_GROUP = "tenantry.tenants"


def _s(name: str, **labels: str) -> str:
    """A series in promtool's notation."""
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _of(tenant: str) -> dict[str, str]:
    """The labels naming a tenant, as its series carry them."""
    return dict(zip(om.TENANT_LABELS, (tenant, contract.tenant_namespace(tenant)), strict=True))


def _condition(tenant: str, kind: str, status: str) -> str:
    return _s(om.TENANT_CONDITIONS, **_of(tenant), type=kind, status=status)


# What the operator's PodMonitor adds to every series it scrapes (honorLabels keeps the
# tenant's namespace where the series has one).
OPERATOR_TARGET = {"job": "tenantry/t-tenantry-operator", "pod": "t-tenantry-operator-0"}
ACME = _of("acme")
BETA = _of("beta")


def _latency(per_bucket: dict[str, int]) -> Series:
    return [(_s(f"{cp.HTTP_LATENCY}_bucket", le=le), f"0+{n}x20") for le, n in per_bucket.items()]


def _alert(labels: Obj, **annotations: str) -> Obj:
    return {"exp_labels": labels, "exp_annotations": annotations}


# For every alert: (a case where it fires, a case where it stays quiet).
CASES: dict[str, tuple[Case, Case]] = {
    "TenantryTenantDegraded": (
        (
            [
                (_condition("acme", "Degraded", "True"), "1x20"),
                (_condition("beta", "Degraded", "False"), "1x20"),
            ],
            "12m",
            [
                _alert(
                    {**W, **ACME},
                    summary="Tenant acme (tenant-acme) Degraded for more than 10 minutes",
                    description="kubectl get tenant acme: the Degraded condition says why"
                    " (reason, message).",
                )
            ],
        ),
        # recovered within 10 minutes
        ([(_condition("acme", "Degraded", "True"), "1x5 0x15")], "12m", []),
    ),
    "TenantryBackupFailed": (
        (
            [
                (_condition("acme", "BackupHealthy", "False"), "1x20"),
                (_condition("beta", "BackupHealthy", "True"), "1x20"),
            ],
            "10m",
            [
                _alert(
                    {**W, **ACME},
                    summary="Tenant acme (tenant-acme): the last backup failed"
                    " (BackupHealthy=False)",
                    description="kubectl get tenant acme -o yaml: status.backup and the"
                    " BackupHealthy condition.",
                )
            ],
        ),
        ([(_condition("acme", "BackupHealthy", "True"), "1x20")], "10m", []),
    ),
    "TenantryBackupMissed": (
        # promtool's clock starts at 0: a backup at -100000 s is 27.8 h old
        (
            [
                (_s(om.LAST_BACKUP, **ACME, **OPERATOR_TARGET), "-100000x30"),
                (_s(om.LAST_BACKUP, **BETA, **OPERATOR_TARGET), "0x30"),
            ],
            "20m",
            [
                _alert(
                    {**W, **ACME},
                    summary="Tenant acme (tenant-acme): no successful backup for more than"
                    " 26 hours",
                )
            ],
        ),
        ([(_s(om.LAST_BACKUP, **BETA), "-90000x30")], "20m", []),  # 25 h old
    ),
    "TenantryIngestionBacklogGrowing": (
        (
            [
                (_s(im.BACKLOG, **ACME, pod="ingestion-1"), "0+100x30"),
                (_s(im.BACKLOG, **ACME, pod="ingestion-2"), "50x30"),
                (_s(im.BACKLOG, **BETA, pod="ingestion-1"), "50x30"),
            ],
            "25m",
            [
                _alert(
                    {**W, **ACME},
                    summary="Tenant acme (tenant-acme): the ingestion backlog has grown for"
                    " 10 minutes",
                    description="The writer does not keep up with producers: look at"
                    f" {im.INSERT_ERRORS} and the tenant's ClickHouse.",
                )
            ],
        ),
        # a large backlog that drains, and one that holds steady, are not growing
        (
            [
                (_s(im.BACKLOG, **ACME, pod="ingestion-1"), "3000-100x30"),
                (_s(im.BACKLOG, **ACME, pod="ingestion-2"), "500x30"),
            ],
            "25m",
            [],
        ),
    ),
    "TenantryClickHouseReplicaLagging": (
        (
            [
                (_s(LAG, **ACME, pod="ch-s0-r1-0"), "600x20"),
                (_s(LAG, **ACME, pod="ch-s0-r0-0"), "0x20"),
            ],
            "12m",
            [
                _alert(
                    {**W, **ACME, "pod": "ch-s0-r1-0"},
                    summary="Tenant acme (tenant-acme): replica ch-s0-r1-0 lags more than 300 s",
                )
            ],
        ),
        ([(_s(LAG, **ACME, pod="ch-s0-r1-0"), "30x20")], "12m", []),
    ),
    "TenantryRedisDown": (
        (
            [
                (_s(rx.UP, **ACME, pod="redis-0", component="redis"), "0x10"),
                (_s(rx.UP, **BETA, pod="redis-0", component="redis"), "1x10"),
            ],
            "6m",
            [
                _alert(
                    {"severity": "critical", **ACME},
                    summary="Tenant acme (tenant-acme): Redis does not answer; ingestion"
                    " cannot buffer events",
                )
            ],
        ),
        ([(_s(rx.UP, **ACME, pod="redis-0", component="redis"), "0x2 1x8")], "6m", []),
    ),
    "TenantryRedisAofWriteFailing": (
        (
            [
                (_s(rx.AOF_LAST_WRITE_OK, **ACME, pod="redis-0"), "0x10"),
                (_s(rx.AOF_LAST_WRITE_OK, **BETA, pod="redis-0"), "1x10"),
            ],
            "3m",
            [
                _alert(
                    {"severity": "critical", **ACME},
                    summary="Tenant acme (tenant-acme): Redis cannot write its append-only"
                    " file; acknowledged events may not be durable",
                    description="Look at the Redis volume (full, read-only) and the redis"
                    " container's log.",
                )
            ],
        ),
        ([(_s(rx.AOF_LAST_WRITE_OK, **ACME, pod="redis-0"), "1x10")], "3m", []),
    ),
    "TenantryVolumeFilling": (
        (
            [
                (_s(USED, namespace="tenant-acme", persistentvolumeclaim="data-ch-0"), "90x20"),
                (
                    _s(CAPACITY, namespace="tenant-acme", persistentvolumeclaim="data-ch-0"),
                    "100x20",
                ),
                (_s(USED, namespace="kube-system", persistentvolumeclaim="other"), "99x20"),
                (_s(CAPACITY, namespace="kube-system", persistentvolumeclaim="other"), "100x20"),
            ],
            "17m",
            [
                _alert(
                    {**W, **ACME, "persistentvolumeclaim": "data-ch-0"},
                    summary="Tenant acme: tenant-acme/data-ch-0 is over 80 % full",
                )
            ],
        ),
        (
            [
                (_s(USED, namespace="tenant-acme", persistentvolumeclaim="data"), "70x20"),
                (_s(CAPACITY, namespace="tenant-acme", persistentvolumeclaim="data"), "100x20"),
            ],
            "17m",
            [],
        ),
    ),
    "TenantryOperatorReconcileErrors": (
        (
            [
                (_s(f"{om.RECONCILE_SECONDS}_count", outcome="error"), "0+1x30"),
                (_s(f"{om.RECONCILE_SECONDS}_count", outcome="converged"), "0+50x30"),
            ],
            "20m",
            [
                _alert(
                    W,
                    summary="The operator's reconciles end in errors (outcome error or"
                    " kube_refused) for 15 minutes",
                    description="Its log and the tenants' Events say which object the API"
                    " server refused.",
                )
            ],
        ),
        (
            [
                (_s(f"{om.RECONCILE_SECONDS}_count", outcome="error"), "5x30"),
                (_s(f"{om.RECONCILE_SECONDS}_count", outcome="converged"), "0+50x30"),
            ],
            "20m",
            [],
        ),
    ),
    "TenantryControlPlaneErrors": (
        (
            [
                (_s(cp.HTTP_REQUESTS, status="200"), "0+100x20"),
                (_s(cp.HTTP_REQUESTS, status="503"), "0+5x20"),
            ],
            "15m",
            [
                _alert(
                    {"severity": "critical"},
                    summary="Control plane: more than 1 % of requests answered 5xx",
                )
            ],
        ),
        # 404s are the clients' errors, not the control plane's
        (
            [
                (_s(cp.HTTP_REQUESTS, status="200"), "0+100x20"),
                (_s(cp.HTTP_REQUESTS, status="404"), "0+50x20"),
            ],
            "15m",
            [],
        ),
    ),
    "TenantryControlPlaneSlow": (
        (
            _latency({"0.1": 10, "0.2": 20, "0.5": 100, "+Inf": 100}),
            "15m",
            [
                _alert(
                    W, summary="Control plane: p95 latency over the 200 ms promise for 10 minutes"
                )
            ],
        ),
        (_latency({"0.1": 90, "0.2": 99, "0.5": 100, "+Inf": 100}), "15m", []),
    ),
}


def test_every_tenant_alert_names_its_tenant_and_namespace(tmp_path: Path) -> None:
    """Each alert of the tenants' group, when it fires, carries the tenant and namespace
    labels of the one tenant it concerns (the firing cases have a second, healthy
    tenant or namespace that must not be named)."""
    rules = yaml.safe_load(_rules_file(tmp_path).read_text())
    (group,) = [g for g in rules["groups"] if g["name"] == TENANT_ALERT_GROUP]
    alerts = [r["alert"] for r in group["rules"]]
    assert len(alerts) == 8
    for alert in alerts:
        (fires, _quiet) = CASES[alert]
        for expected in fires[2]:
            labels = expected["exp_labels"]
            assert labels["tenant"] == "acme", alert
            assert labels["namespace"] == contract.tenant_namespace("acme"), alert


def _unit_tests() -> list[Obj]:
    tests = []
    for alert, cases in CASES.items():
        for series, at, expected in cases:
            tests.append(
                {
                    "name": f"{alert} {'fires' if expected else 'stays quiet'}",
                    "interval": "1m",
                    "input_series": [{"series": s, "values": v} for s, v in series],
                    "alert_rule_test": [
                        {"eval_time": at, "alertname": alert, "exp_alerts": expected}
                    ],
                }
            )
    return tests


def test_every_alert_has_a_firing_and_a_quiet_case(tmp_path: Path) -> None:
    rules = yaml.safe_load(_rules_file(tmp_path).read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert alerts == set(CASES)
    for alert, (fires, quiet) in CASES.items():
        assert fires[2], alert
        assert not quiet[2], alert


def test_promtool_unit_tests_of_every_alert(tmp_path: Path) -> None:
    rules = _rules_file(tmp_path)
    spec = tmp_path / "tests.yaml"
    spec.write_text(
        yaml.safe_dump(
            {"rule_files": [rules.name], "evaluation_interval": "1m", "tests": _unit_tests()}
        )
    )
    done = _promtool("test", "rules", str(spec))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """A rule whose threshold moved (backups missed after 48 h, not 26) fails the case
    written for 26 h: the unit tests see what the rules say."""
    rules = _rules_file(
        tmp_path,
        {
            **ON,
            "monitoring": {**ON["monitoring"], "rules": {"enabled": True, "backupMaxAgeHours": 48}},
        },
    )
    spec = tmp_path / "tests.yaml"
    fires, _ = CASES["TenantryBackupMissed"]
    series, at, expected = fires
    spec.write_text(
        yaml.safe_dump(
            {
                "rule_files": [rules.name],
                "evaluation_interval": "1m",
                "tests": [
                    {
                        "interval": "1m",
                        "input_series": [{"series": s, "values": v} for s, v in series],
                        "alert_rule_test": [
                            {
                                "eval_time": at,
                                "alertname": "TenantryBackupMissed",
                                "exp_alerts": expected,
                            }
                        ],
                    }
                ],
            }
        )
    )
    done = _promtool("test", "rules", str(spec))
    assert done.returncode != 0
    assert "TenantryBackupMissed" in done.stdout + done.stderr

"""The chart's Grafana dashboards (issue 16): built with Grafana's SDK, shipped in
ConfigMaps for Grafana's dashboard sidecar.

Checked: the files are exactly what ``scripts/dashboards.py`` builds; each reads back
through the SDK's dashboard model unchanged (a field the model does not know would be
lost); every query parses with promtool; every ``tenantry_*`` metric a query or an alert
names is one the code exports; the ConfigMaps carry the sidecar's label.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard
from prometheus_client import CollectorRegistry

from scripts import dashboards
from tests.unit.chart import test_monitoring
from tests.unit.chart.helm import KUBE_VERSION, find, render

Obj = dict[str, Any]
NAMES = sorted(dashboards.DASHBOARDS)
# Grafana's variables, as Prometheus would see them once Grafana filled them in
VARIABLES = {"$__rate_interval": "5m", "$tenant": "acme"}
METRIC = re.compile(r"\btenantry_[a-z_]+\b")


def _file(name: str) -> Path:
    return dashboards.OUT / f"{name}.json"


def _exprs(doc: Obj) -> list[str]:
    return [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]


def _exported() -> set[str]:
    """Every series name the operator, the ingestion pods and the control plane export."""
    from tenantry_operator.metrics import OperatorMetrics

    from controlplane.observability import Metrics as ControlPlaneMetrics
    from ingestion.metrics import Metrics as IngestionMetrics

    registries: list[CollectorRegistry] = [
        OperatorMetrics().registry,
        IngestionMetrics().registry,
        ControlPlaneMetrics().registry,
    ]
    names: set[str] = set()
    for registry in registries:
        for family in registry.collect():
            names.add(family.name)
            names.update(s.name for s in family.samples)
            suffixes = {
                "counter": ("_total",),
                "histogram": ("_bucket", "_count", "_sum"),
            }.get(family.type, ())
            names.update(family.name + suffix for suffix in suffixes)
    return names


@pytest.mark.parametrize("name", NAMES)
def test_files_are_what_the_sdk_builds(name: str) -> None:
    assert _file(name).read_text() == dashboards.render(name), "run python -m scripts.dashboards"


@pytest.mark.parametrize("name", NAMES)
def test_dashboards_read_back_through_the_sdk_model(name: str) -> None:
    doc = json.loads(_file(name).read_text())
    again = json.loads(json.dumps(Dashboard.from_json(doc), cls=JSONEncoder))
    assert again == doc
    # and the comparison can fail: a field the model does not know is lost
    bogus = {**doc, "panels": [{**doc["panels"][1], "nonsense": 1}, *doc["panels"][2:]]}
    assert json.loads(json.dumps(Dashboard.from_json(bogus), cls=JSONEncoder)) != bogus


def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    rules = []
    for name in NAMES:
        for number, expr in enumerate(_exprs(json.loads(_file(name).read_text()))):
            for variable, value in VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, expr
            rules.append({"record": f"dashboard:{name.replace('-', '_')}:{number}", "expr": expr})
    assert len(rules) >= 15
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    done = test_monitoring._promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_tenantry_metric_named_is_exported(tmp_path: Path) -> None:
    exported = _exported()
    assert "tenantry_operator_reconcile_seconds_bucket" in exported
    assert "tenantry_ingest_events_accepted_total" in exported
    texts = [_file(name).read_text() for name in NAMES]
    texts.append(test_monitoring._rules_file(tmp_path).read_text())
    named = {m for text in texts for m in METRIC.findall(text)}
    assert len(named) >= 15
    assert named <= exported, sorted(named - exported)


def test_configmaps_for_the_grafana_sidecar() -> None:
    assert not [o for o in render() if o["metadata"]["name"].endswith("-overview")]
    objs = render({"monitoring": {"dashboards": {"enabled": True, "folder": "Tenantry"}}})
    maps = {
        o["metadata"]["name"]: o
        for o in find(objs, "ConfigMap")
        if "-dashboard-" in o["metadata"]["name"]
    }
    assert set(maps) == {f"t-tenantry-dashboard-{name}" for name in NAMES}
    for name in NAMES:
        config_map = maps[f"t-tenantry-dashboard-{name}"]
        kubernetes_validate.validate(config_map, KUBE_VERSION, strict=True)
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["annotations"] == {"grafana_folder": "Tenantry"}
        shipped = json.loads(config_map["data"][f"{name}.json"])
        assert shipped == json.loads(_file(name).read_text())


def test_every_redis_metric_named_is_exported(tmp_path: Path) -> None:
    """The Redis series the dashboards and alerts read are the exporter sidecar's."""
    from ingestion import redis_exporter as rx

    info: dict[str, object] = {field: 1 for field in (*rx.GAUGES, *rx.COUNTERS)}
    info.update({field: "ok" for field in rx.STATUSES})
    info["db0"] = {"keys": 1, "expires": 0}
    exported = {rx.UP}
    for family in rx.families(info):
        exported.update(s.name for s in family.samples)
    assert "redis_commands_processed_total" in exported
    texts = [_file(name).read_text() for name in NAMES]
    texts.append(test_monitoring._rules_file(tmp_path).read_text())
    named = {m for text in texts for m in re.findall(r"\bredis_[a-z_]+\b", text)}
    assert {rx.UP, rx.AOF_LAST_WRITE_OK, "redis_memory_used_bytes"} <= named
    assert named <= exported, sorted(named - exported)

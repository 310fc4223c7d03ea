"""The generated CRDs install on the real API server, document themselves, accept the
examples and reject invalid objects with messages that say what to fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.kube import Kube

REPO = Path(__file__).resolve().parents[2]
CASES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "data" / "invalid.yaml").read_text()
)
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def _obj(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "tenantry.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


def test_explain_prints_field_docs(crds: Kube) -> None:
    out = crds.run("explain", "tenant.spec.clickhouse")
    assert "The ClickHouse cluster" in out
    assert "Number of shards (>= 1)" in out
    assert "Replicas per shard, 1 to 5" in out
    out = crds.run("explain", "dashboard.spec.panels")
    assert "Keep the result in a materialized view" in out


def test_short_names_category_and_printer_columns(crds: Kube) -> None:
    name = "e2e-columns"
    crds.apply(_obj("Tenant", name, {"plan": "growth"}))
    try:
        for alias in ("tnt", "tenants", "tenantry"):
            res = crds.try_run("get", alias)
            assert res.code == 0, res.stderr
            assert name in res.stdout
        header = crds.run("get", "tenants").splitlines()[0].split()
        assert header[:7] == ["NAME", "PLAN", "SHARDS", "REPLICAS", "HOSTS", "READY", "PHASE"]
        wide = crds.run("get", "tenants", "-o", "wide").splitlines()[0].split()
        assert "VERSION" in wide
        assert "SUSPENDED" in wide
    finally:
        crds.run("delete", "tenant", name, "--wait=false")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_are_accepted(crds: Kube, path: Path) -> None:
    res = crds.try_run("apply", "--server-side", "--dry-run=server", "-f", str(path))
    assert res.code == 0, res.stderr


def test_examples_cover_both_kinds() -> None:
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in EXAMPLES}
    assert kinds == {"Tenant", "Dashboard"}


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 90
    assert len({c["name"] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_invalid_object_is_rejected_with_a_clear_message(crds: Kube, case: dict[str, Any]) -> None:
    name = case.get("metadataName", f"invalid-{case['name']}")
    obj = _obj(case["kind"], name, case["spec"])
    plural = case["kind"].lower() + "s"
    # Sent as JSON: in YAML an unquoted 1e300 would reach the API server as a number.
    try:
        if "update" in case:
            created = crds.try_run("create", "-f", "-", stdin=json.dumps(obj))
            assert created.code == 0, f"base object must be valid: {created.stderr}"
            # The whole spec becomes `update` (a replace): removing a field is a change too.
            obj = _obj(case["kind"], name, case["update"])
            res = crds.try_run("replace", "-f", "-", stdin=json.dumps(obj))
        else:
            res = crds.try_run("create", "-f", "-", stdin=json.dumps(obj))
        assert res.code != 0, f"accepted but should be rejected: {res.stdout}"
        for needle in case["expect"]:
            assert needle in res.stderr, f"{needle!r} not in: {res.stderr}"
    finally:
        crds.try_run("delete", plural, name, "--ignore-not-found", "--wait=false")

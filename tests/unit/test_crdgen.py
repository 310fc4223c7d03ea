"""The CRDs in crds/ are generated from the models, structural and documented."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tenantry.api import crdgen
from tenantry.api.tenant import TenantSpec

REPO = Path(__file__).resolve().parents[2]


def _nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("defn", crdgen.ALL, ids=lambda d: d.kind)
def test_committed_crds_are_up_to_date(defn: crdgen.CRDDef) -> None:
    path = REPO / "crds" / f"tenantry.io_{defn.plural}.yaml"
    assert path.read_text() == crdgen.render(defn), "crds/ is stale: run `make crds`"


@pytest.mark.parametrize("defn", crdgen.ALL, ids=lambda d: d.kind)
def test_schema_is_structural_and_documented(defn: crdgen.CRDDef) -> None:
    schema = crdgen.crd(defn)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _nodes(schema):
        assert "type" in node, f"{path} has no type"
        for forbidden in ("$ref", "anyOf", "allOf", "oneOf", "title", "$defs"):
            assert forbidden not in node, f"{path} has {forbidden}"
        if node.get("type") == "object" and "properties" in node:
            assert "additionalProperties" not in node, path
        documented = path.startswith((".spec", ".status")) and not path.endswith(("[]", "{}"))
        if documented:
            assert node.get("description"), f"{path} has no description"
        for rule in node.get("x-kubernetes-validations", []):
            assert rule["message"], path
            assert rule["rule"], path


def test_versions_subresources_and_names() -> None:
    for defn in crdgen.ALL:
        doc = crdgen.crd(defn)
        version = doc["spec"]["versions"][0]
        assert version["name"] == "v1alpha1"
        assert version["subresources"] == {"status": {}}
        assert doc["spec"]["names"]["shortNames"]
        assert "tenantry" in doc["spec"]["names"]["categories"]
        columns = [c["name"] for c in version["additionalPrinterColumns"]]
        # the condition that says whether it worked: Ready, or a Restore's Succeeded
        assert ("Succeeded" if defn.kind == "Restore" else "Ready") in columns
        assert "Age" in columns


def test_plan_dependent_fields_have_no_default() -> None:
    """Unset must stay unset so the operator can apply the plan preset."""
    spec = crdgen.schema_of(TenantSpec)
    ch = spec["properties"]["clickhouse"]["properties"]
    for field in ("shards", "replicas"):
        assert "default" not in ch[field]
    assert "default" not in spec["properties"]["retentionDays"]
    assert spec["properties"]["reclaimPolicy"]["default"] == "Retain"


def test_union_that_cannot_be_structural_is_refused() -> None:
    from pydantic import BaseModel

    class Bad(BaseModel):
        value: int | str

    with pytest.raises(ValueError, match="cannot express union"):
        crdgen.schema_of(Bad)


def test_every_cel_rule_mentions_a_field() -> None:
    text = yaml.safe_dump([crdgen.crd(d) for d in crdgen.ALL])
    docs = yaml.safe_load(text)
    rules = [
        r
        for d in docs
        for _, n in _nodes(d["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
        for r in n.get("x-kubernetes-validations", [])
    ]
    assert len(rules) >= 10
    for rule in rules:
        assert any(ch.isalpha() for ch in rule["message"].split()[0])

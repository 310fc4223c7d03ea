"""Generate the CustomResourceDefinitions in ``crds/`` from the pydantic models.

Pydantic's JSON Schema is close to what Kubernetes wants but not the same: Kubernetes
needs a *structural* schema (no ``$ref``, every node typed, no ``anyOf`` of types, no
``additionalProperties: false`` next to ``properties``), so this module inlines
references, drops ``null`` alternatives of optional fields, and keeps descriptions,
bounds, defaults and ``x-kubernetes-*`` extensions. Run it with ``make crds``; a unit test
fails when the committed files differ from what it produces.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from tenantry.api import GROUP, VERSION
from tenantry.api.dashboard import DashboardSpec, DashboardStatus
from tenantry.api.restore import RestoreSpec, RestoreStatus
from tenantry.api.tenant import TENANT_NAME_RULE, TenantSpec, TenantStatus

JSON = dict[str, Any]
_DROP = {"title", "$defs", "discriminator"}
_FIRST = ("description", "type")


@dataclass(frozen=True)
class CRDDef:
    kind: str
    plural: str
    short_names: list[str]
    spec: type[BaseModel]
    status: type[BaseModel]
    description: str
    printer_columns: list[JSON]
    root_validations: list[dict[str, str]] = field(default_factory=list)
    scope: str = "Cluster"


def _resolve(node: Any, defs: JSON, *, names: bool = False) -> Any:
    """Inline ``$ref``s; ``names`` is set for a ``properties`` map, whose keys are field
    names (a field may well be called "title") rather than schema keywords."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if names:
        return {k: _resolve(v, defs) for k, v in node.items()}
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        # Keep what the referring site adds (description, default, extensions).
        extra = {k: v for k, v in node.items() if k != "$ref"}
        merged = _merge(target, extra)
        return _resolve(merged, defs)
    return {
        k: _resolve(v, defs, names=(k == "properties")) for k, v in node.items() if k not in _DROP
    }


def _merge(base: JSON, extra: JSON) -> JSON:
    out = dict(base)
    for key, value in extra.items():
        if key == "x-kubernetes-validations" and key in out:
            out[key] = [*out[key], *value]
        else:
            out[key] = value
    return out


def _structural(node: Any, *, names: bool = False) -> Any:
    """Make a resolved pydantic schema node structural (``names``: see ``_resolve``)."""
    if isinstance(node, list):
        return [_structural(item) for item in node]
    if not isinstance(node, dict):
        return node
    if names:
        return {k: _structural(v) for k, v in node.items()}
    node = dict(node)
    any_of = node.pop("anyOf", None)
    if any_of is not None:
        non_null = [alt for alt in any_of if alt.get("type") != "null"]
        if len(non_null) != 1:
            raise ValueError(f"cannot express union {any_of!r} structurally")
        node = _merge(non_null[0], node)
        if node.get("default", "") is None:
            node.pop("default")
    all_of = node.pop("allOf", None)
    if all_of is not None:
        for part in all_of:
            node = _merge(part, node)
    if node.get("additionalProperties") is False:
        node.pop("additionalProperties")
    if "default" in node and node["default"] is None:
        node.pop("default")
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "enum" in node and "type" not in node:
        node["type"] = _json_type(node["enum"][0])
    # Drop an empty-object default of a nested object: the API server would then have to
    # materialise the object, which hides "unset" from the operator.
    if node.get("type") == "object" and node.get("default") == {}:
        node.pop("default")
    if isinstance(node.get("description"), str):
        node["description"] = " ".join(node["description"].split())
    out = {k: node[k] for k in _FIRST if k in node}
    out.update(
        {k: _structural(v, names=(k == "properties")) for k, v in node.items() if k not in _FIRST}
    )
    return out


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return "string"


def schema_of(model: type[BaseModel]) -> JSON:
    """The structural openAPIV3Schema of a model (camelCase field names)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    return _structural(_resolve(raw, defs))  # type: ignore[no-any-return]


def crd(defn: CRDDef) -> JSON:
    spec_schema = schema_of(defn.spec)
    status_schema = schema_of(defn.status)
    root: JSON = {
        "type": "object",
        "description": defn.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this object."},
            "kind": {"type": "string", "description": "Kind of this object."},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    if defn.root_validations:
        root["x-kubernetes-validations"] = defn.root_validations
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{defn.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "tenantry"},
        },
        "spec": {
            "group": GROUP,
            "scope": defn.scope,
            "names": {
                "kind": defn.kind,
                "listKind": f"{defn.kind}List",
                "plural": defn.plural,
                "singular": defn.kind.lower(),
                "shortNames": defn.short_names,
                "categories": ["tenantry", "all-tenantry"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": defn.printer_columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def _condition_column(name: str, ctype: str, *, priority: int = 0) -> JSON:
    col: JSON = {
        "name": name,
        "type": "string",
        "jsonPath": f'.status.conditions[?(@.type=="{ctype}")].status',
    }
    if priority:
        col["priority"] = priority
    return col


AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}

TENANT = CRDDef(
    kind="Tenant",
    plural="tenants",
    short_names=["tnt"],
    spec=TenantSpec,
    status=TenantStatus,
    description="A Tenant is one customer's isolated analytics stack: sharded ClickHouse "
    "with Keeper, Redis and ingestion pods in the namespace tenant-<name>.",
    root_validations=[TENANT_NAME_RULE],
    printer_columns=[
        {"name": "Plan", "type": "string", "jsonPath": ".spec.plan"},
        {"name": "Shards", "type": "integer", "jsonPath": ".status.shards"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".status.replicas"},
        {"name": "Hosts", "type": "string", "jsonPath": ".status.hosts"},
        _condition_column("Ready", "Ready"),
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {
            "name": "Version",
            "type": "string",
            "jsonPath": ".spec.clickhouse.version",
            "priority": 1,
        },
        {"name": "Suspended", "type": "boolean", "jsonPath": ".spec.suspend", "priority": 1},
        AGE,
    ],
)

DASHBOARD = CRDDef(
    kind="Dashboard",
    plural="dashboards",
    short_names=["dash"],
    spec=DashboardSpec,
    status=DashboardStatus,
    description="A Dashboard is a set of saved SQL panels on one Tenant's ClickHouse, "
    "validated by the operator and served (cached) by the control plane.",
    printer_columns=[
        {"name": "Tenant", "type": "string", "jsonPath": ".spec.tenantRef.name"},
        {"name": "Title", "type": "string", "jsonPath": ".spec.title"},
        {"name": "Panels", "type": "string", "jsonPath": ".status.panelsValid"},
        _condition_column("Ready", "Ready"),
        AGE,
    ],
)

RESTORE = CRDDef(
    kind="Restore",
    plural="restores",
    short_names=["rst"],
    spec=RestoreSpec,
    status=RestoreStatus,
    description="A Restore brings one backup (latest or a named one, of this or another "
    "Tenant) into a Tenant's ClickHouse, once; the operator runs it as a Job.",
    printer_columns=[
        {"name": "Tenant", "type": "string", "jsonPath": ".spec.tenant"},
        {"name": "Backup", "type": "string", "jsonPath": ".spec.source.backup"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Progress", "type": "string", "jsonPath": ".status.progress"},
        _condition_column("Succeeded", "Succeeded"),
        {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
        AGE,
    ],
)

ALL = (TENANT, DASHBOARD, RESTORE)


def render(defn: CRDDef) -> str:
    header = "# Generated by `make crds` from tenantry/api; do not edit by hand.\n"
    return header + yaml.safe_dump(crd(defn), sort_keys=False, width=100)


def write(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for defn in ALL:
        path = out_dir / f"{GROUP}_{defn.plural}.yaml"
        path.write_text(render(defn))
        paths.append(path)
    return paths

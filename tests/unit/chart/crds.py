"""Validate custom objects against the schema of their CustomResourceDefinition.

kubernetes_validate knows the built-in kinds only. For the prometheus-operator's kinds
(PodMonitor, PrometheusRule) the schema is the CRD's own ``openAPIV3Schema``, from the
CRD files of its Go module (``scripts/tools.sh prometheus-operator-crds``), made strict
as the API server is with ``kubectl apply --validate=strict``: a field the schema does
not declare is an error (``additionalProperties: false`` wherever an object lists its
properties and neither keeps unknown fields nor declares a map), and
``x-kubernetes-int-or-string`` admits an integer or a string.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

Obj = dict[str, Any]


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML 1.1's "value" tag: PyYAML reads a bare ``=`` (an enum value of relabelling
    actions in these CRDs) as it; the API server's YAML reads it as the string "="."""


_Loader.add_constructor(
    "tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node)
)


@functools.cache
def _crds() -> dict[tuple[str, str], Obj]:
    """(apiVersion, kind) -> the version's openAPIV3Schema, for every CRD file."""
    from tenantry_dev import tools

    out: dict[tuple[str, str], Obj] = {}
    directory: Path = tools.prometheus_operator_crds()
    for path in sorted(directory.glob("monitoring.coreos.com_*.yaml")):
        crd = yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 - safe loader
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = version["schema"]["openAPIV3Schema"]
            out[(f"{group}/{version['name']}", kind)] = schema
    return out


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strict(value) for key, value in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def _validator(api_version: str, kind: str) -> jsonschema.Draft4Validator:
    schema = _crds().get((api_version, kind))
    if schema is None:
        raise KeyError(f"no CRD for {api_version} {kind}")
    return jsonschema.Draft4Validator(_strict(copy.deepcopy(schema)))


def validate(obj: Obj) -> None:
    """Raise ``jsonschema.ValidationError`` when ``obj`` does not fit its CRD."""
    _validator(obj["apiVersion"], obj["kind"]).validate(obj)

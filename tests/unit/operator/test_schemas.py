"""Every rendered object is valid against the Kubernetes 1.33 OpenAPI schemas (strict:
unknown fields are errors too), using the kubernetes-validate package offline."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest
from tenantry_operator import builders

from tests.unit.operator import fixtures

K8S_VERSION = "1.33.0"


def _objects() -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, obj)
        for name in sorted(fixtures.EXAMPLES)
        for obj in builders.build(fixtures.model(name))
    ]


OBJECTS = _objects()


@pytest.mark.parametrize(
    ("name", "obj"),
    OBJECTS,
    ids=[f"{n}:{o['kind']}/{o['metadata']['name']}" for n, o in OBJECTS],
)
def test_valid_against_kubernetes_schema(name: str, obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_validator_rejects_what_the_api_server_would() -> None:
    """The check above has teeth: an unknown field and a wrong type both fail."""
    sts = next(o for _, o in OBJECTS if o["kind"] == "StatefulSet")
    unknown = copy.deepcopy(sts)
    unknown["spec"]["replicaz"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(unknown, K8S_VERSION, strict=True)
    wrong_type = copy.deepcopy(sts)
    wrong_type["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, K8S_VERSION, strict=True)

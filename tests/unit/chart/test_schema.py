"""values.schema.json rejects what would otherwise render a broken or unsafe release."""

from __future__ import annotations

import json

import pytest

from tests.unit.chart import helm
from tests.unit.chart.helm import Obj, error, render

BAD: list[tuple[str, Obj, str]] = [
    ("unknown top-level key", {"operatr": {}}, "additional properties 'operatr' not allowed"),
    ("unknown nested key", {"operator": {"replica": 1}}, "additional properties 'replica'"),
    ("two operators", {"operator": {"replicas": 2}}, "/operator/replicas"),
    ("pull policy", {"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ("digest", {"image": {"digest": "latest"}}, "/image/digest"),
    ("service port", {"controlplane": {"service": {"port": 0}}}, "/controlplane/service/port"),
    ("service type", {"controlplane": {"service": {"type": "Ingress"}}}, "/service/type"),
    (
        "ingress path",
        {
            "controlplane": {
                "ingress": {
                    "hosts": [{"host": "h", "paths": [{"path": "x", "pathType": "Prefix"}]}]
                }
            }
        },
        "/controlplane/ingress/hosts/0/paths/0/path",
    ),
    ("crds toggle type", {"crds": {"install": "yes"}}, "/crds/install"),
    ("resync too fast", {"operator": {"resyncSeconds": 1}}, "/operator/resyncSeconds"),
    (
        "platform namespace",
        {"operator": {"platformNamespaces": ["Not_A_Name"]}},
        "platformNamespaces",
    ),
    ("s3 endpoint", {"operator": {"s3": {"endpoint": "s3.example.com"}}}, "/operator/s3/endpoint"),
    (
        "resources",
        {"operator": {"resources": {"limits": {"memory": "lots"}}}},
        "/operator/resources",
    ),
    ("cors origin", {"controlplane": {"config": {"corsOrigins": ["*"]}}}, "corsOrigins"),
    (
        "trusting X-Forwarded-For from nobody",
        {"controlplane": {"config": {"trustForwardedFor": True}}},
        "/controlplane/config/trustedProxies",
    ),
    (
        "a proxy by name",
        {"controlplane": {"config": {"trustedProxies": ["proxy.example.com"]}}},
        "/controlplane/config/trustedProxies/0",
    ),
    (
        "body limit",
        {"controlplane": {"config": {"maxBodyBytes": 10}}},
        "/controlplane/config/maxBodyBytes",
    ),
]


@pytest.mark.parametrize(
    ("values", "message"), [(v, m) for _, v, m in BAD], ids=[i for i, _, _ in BAD]
)
def test_schema_rejects(values: Obj, message: str) -> None:
    stderr = error(values)
    assert "values don't meet the specifications of the schema" in stderr
    assert message in stderr


def test_schema_is_strict_on_every_chart_owned_object() -> None:
    """Each object in the schema that describes chart settings rejects unknown keys."""
    schema = json.loads((helm.CHART / "values.schema.json").read_text())

    def walk(node: Obj, path: str) -> None:
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, path
            for key, child in node["properties"].items():
                walk(child, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")

    walk(schema, "values")


def test_defaults_and_every_documented_key_pass_the_schema() -> None:
    values = {
        "controlplane": {"database": {"existingSecret": "db"}, "redis": {"existingSecret": "r"}},
        "operator": {"platformNamespaces": ["tenantry-system", "monitoring"]},
    }
    assert render(values)

"""The tenant's durability level (spec.redis.durability) reaches redis-server's arguments.

What the levels promise is shown against a lossy disk in
tests/integration/ingestion/test_durability.py; here: the spec's value, and only a known
one, becomes ``--appendfsync`` in the Redis StatefulSet, and the default is the level
the README documents.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from tenantry_operator.builders import redis
from tenantry_operator.normalize import tenant_model

from tenantry.api.tenant import Durability, TenantSpec
from tests.unit.operator import fixtures


def redis_args(spec: dict[str, Any]) -> list[str]:
    body = fixtures.body("tenant-starter")
    body["spec"] = {**body["spec"], **spec}
    model = tenant_model(body, platform_namespaces=fixtures.PLATFORM_NAMESPACES)
    (sts,) = redis.statefulsets(model)
    (container,) = [
        c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "redis"
    ]
    args: list[str] = container["args"]
    return args


def option(args: list[str], name: str) -> str:
    """The value after ``name``; the option must appear exactly once."""
    assert args.count(name) == 1, args
    return args[args.index(name) + 1]


@pytest.mark.parametrize(
    ("spec", "appendfsync"),
    [
        ({}, "everysec"),
        ({"redis": {}}, "everysec"),
        ({"redis": {"durability": "EverySecond"}}, "everysec"),
        ({"redis": {"durability": "Always"}}, "always"),
    ],
)
def test_the_level_becomes_appendfsync(spec: dict[str, Any], appendfsync: str) -> None:
    args = redis_args(spec)
    assert option(args, "--appendonly") == "yes"
    assert option(args, "--appendfsync") == appendfsync


def test_every_level_maps_to_a_distinct_redis_setting() -> None:
    settings = [level.appendfsync for level in Durability]
    assert sorted(settings) == ["always", "everysec"]


@pytest.mark.parametrize("value", ["always", "Never", "everysec", "", "WaitReplica"])
def test_an_unknown_level_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(ValidationError) as err:
        TenantSpec.model_validate({"redis": {"durability": value}})
    assert err.value.errors()[0]["loc"] == ("redis", "durability")


def test_the_crd_documents_each_level_and_each_failure() -> None:
    crd = yaml.safe_load((fixtures.REPO / "crds" / "tenantry.io_tenants.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    field = spec["properties"]["redis"]["properties"]["durability"]
    assert field["enum"] == ["EverySecond", "Always"]
    assert field["default"] == "EverySecond"
    words = " ".join(field["description"].split())
    for failure in ("process (SIGKILL", "node crash", "losing the volume"):
        assert failure in words

"""How the operator reaches a tenant's ClickHouse: URLs, database names, redaction."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest
from tenantry_operator.dataplane import connect

from tenantry import clickhouse
from tests.unit.operator import fixtures


def test_default_url_is_the_tenant_service_as_admin() -> None:
    model = fixtures.model("tenant-starter")
    url = connect.clickhouse_url(model, "s3cret/+:@pw", override=None)
    assert url == (
        "http://admin:s3cret%2F%2B%3A%40pw@clickhouse.tenant-acme.svc.cluster.local:8123/"
    )


def test_schema_provisioning_reaches_each_host_through_its_own_service() -> None:
    """The per-host Service publishes the pod whatever its labels: the operator reaches
    a host that is not (yet) in the `clickhouse` Service."""
    model = fixtures.model("tenant-sharded")
    url = connect.clickhouse_url(model, "pw", override=None, host="ch-s2-r1")
    assert url == "http://admin:pw@ch-s2-r1.tenant-globex.svc.cluster.local:8123/"
    override = "http://writer:pw@127.0.0.1:18123/"
    assert connect.clickhouse_url(model, "pw", override=override, host="ch-s2-r1") == override


def test_override_replaces_the_url() -> None:
    model = fixtures.model("tenant-starter")
    override = "http://writer:pw@127.0.0.1:18123/"
    assert connect.clickhouse_url(model, "ignored", override=override) == override
    assert connect.clickhouse_url(model, "x", override="chdb:///tmp/e") == "chdb:///tmp/e"


def test_default_url_needs_the_password() -> None:
    model = fixtures.model("tenant-starter")
    with pytest.raises(ValueError, match="no ClickHouse admin password"):
        connect.clickhouse_url(model, None, override=None)
    assert connect.clickhouse_url(model, None, override="chdb:///x") == "chdb:///x"


async def test_open_for_tenant_waits_for_the_secret() -> None:
    model = fixtures.model("tenant-starter")
    kube = _FakeKube(None)
    client = await connect.open_for_tenant(kube, model, override=None, scoped=False)  # type: ignore[arg-type]
    assert client is None
    assert kube.asked == [("v1", "Secret", "clickhouse-credentials", "tenant-acme")]


def test_database_name_per_tenant() -> None:
    model = fixtures.model("tenant-starter")
    assert connect.database_name(model) == "t_acme"
    other = dataclasses.replace(model, name="acme-prod-2")
    assert connect.database_name(other) == "t_acme_prod_2"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://admin:s3cret@host:8123/", "http://admin:***@host:8123/"),
        ("https://u:p%40ss@h.example/db?x=1", "https://u:***@h.example/db?x=1"),
        ("http://:onlypw@[::1]:8123/", "http://:***@[::1]:8123/"),
        ("http://nopassword@host:8123/", "http://nopassword@host:8123/"),
        ("chdb:///var/lib/chdb", "chdb:///var/lib/chdb"),
    ],
)
def test_redact_url_hides_the_password(url: str, expected: str) -> None:
    redacted = connect.redact_url(url)
    assert redacted == expected
    assert "s3cret" not in redacted
    assert "onlypw" not in redacted


def test_redacted_default_url_never_shows_the_password() -> None:
    model = fixtures.model("tenant-sharded")
    url = connect.clickhouse_url(model, "Zq9-secret-value", override=None)
    assert "Zq9-secret-value" in url
    assert "Zq9" not in connect.redact_url(url)


def test_with_database_sets_the_path_only() -> None:
    url = "http://u:p@127.0.0.1:8123/"
    assert clickhouse.with_database(url, "t_acme") == "http://u:p@127.0.0.1:8123/t_acme"
    with pytest.raises(ValueError, match="identifier"):
        clickhouse.with_database(url, "t_acme; DROP")
    with pytest.raises(ValueError, match="http"):
        clickhouse.with_database("chdb:///x", "t_acme")


class _FakeKube:
    def __init__(self, secret: dict[str, Any] | None) -> None:
        self.secret = secret
        self.asked: list[tuple[str, str, str, str | None]] = []

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        self.asked.append((api_version, kind, name, namespace))
        return self.secret


async def test_admin_password_from_the_tenant_secret() -> None:
    model = fixtures.model("tenant-starter")
    encoded = base64.b64encode(b"the-admin-pw").decode()
    kube = _FakeKube({"data": {"admin-password": encoded, "writer-password": "eA=="}})
    assert await connect.admin_password(kube, model) == "the-admin-pw"  # type: ignore[arg-type]
    assert kube.asked == [("v1", "Secret", "clickhouse-credentials", "tenant-acme")]
    assert await connect.admin_password(_FakeKube(None), model) is None  # type: ignore[arg-type]
    assert await connect.admin_password(_FakeKube({"data": {}}), model) is None  # type: ignore[arg-type]

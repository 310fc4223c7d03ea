"""The environment contract with the operator's ingestion Deployment."""

from __future__ import annotations

import pytest

from ingestion import settings
from ingestion.settings import SettingsError, from_env

DIGEST = settings.key_digest("secret-key")
OPERATOR_ENV = {
    "TENANTRY_TENANT": "acme-prod",
    "TENANTRY_LISTEN": "0.0.0.0:8080",
    "TENANTRY_REDIS_HOST": "redis.tenant-acme-prod.svc",
    "TENANTRY_REDIS_PORT": "6379",
    "TENANTRY_REDIS_PASSWORD": "r-pass",
    "TENANTRY_CLICKHOUSE_URL": "http://clickhouse.tenant-acme-prod.svc:8123",
    "TENANTRY_CLICKHOUSE_USER": "writer",
    "TENANTRY_CLICKHOUSE_PASSWORD": "p@ss/word",
    "TENANTRY_CLICKHOUSE_CLUSTER": "tenant",
    "TENANTRY_RETENTION_DAYS": "90",
    "TENANTRY_CONTROLPLANE_URL": "http://controlplane.tenantry-system.svc:8000/",
    "TENANTRY_INTERNAL_TOKEN": "internal",
}


def test_operator_environment_is_read() -> None:
    s = from_env(OPERATOR_ENV)
    assert (s.tenant, s.listen_host, s.listen_port) == ("acme-prod", "0.0.0.0", 8080)  # noqa: S104
    assert (s.redis_host, s.redis_port, s.redis_password) == (
        "redis.tenant-acme-prod.svc",
        6379,
        "r-pass",
    )
    assert s.clickhouse_url == "http://writer:p%40ss%2Fword@clickhouse.tenant-acme-prod.svc:8123"
    assert (s.clickhouse_cluster, s.retention_days) == ("tenant", 90)
    assert s.database == "acme_prod"
    assert s.table == "acme_prod.events"
    assert s.controlplane_url == "http://controlplane.tenantry-system.svc:8000"
    assert s.provision is False


def test_static_keys_mode_and_chdb_provisions_by_default() -> None:
    env = {
        "TENANTRY_TENANT": "1st",
        "TENANTRY_CLICKHOUSE_URL": "chdb:///var/lib/tenantry/chdb",
        "TENANTRY_INGEST_KEYS": f" {DIGEST.upper()} ,",
    }
    s = from_env(env)
    assert s.key_digests == frozenset({DIGEST})
    assert s.database == "t_1st"
    assert s.clickhouse_url == "chdb:///var/lib/tenantry/chdb"
    assert s.provision is True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"TENANTRY_TENANT": ""}, "TENANTRY_TENANT"),
        ({"TENANTRY_INGEST_KEYS": DIGEST}, "not both"),
        ({"TENANTRY_CONTROLPLANE_URL": ""}, "API keys"),
        ({"TENANTRY_INTERNAL_TOKEN": ""}, "TENANTRY_INTERNAL_TOKEN"),
        ({"TENANTRY_LISTEN": "nope"}, "host:port"),
        ({"TENANTRY_RETENTION_DAYS": "0"}, "at least 1"),
        ({"TENANTRY_INGEST_FLUSH_SECONDS": "x"}, "number"),
        ({"TENANTRY_INGEST_PROVISION": "maybe"}, "true or false"),
        ({"TENANTRY_INGEST_CLAIM_IDLE_SECONDS": "1"}, "must exceed"),
    ],
)
def test_bad_environments_say_what_is_wrong(change: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        from_env({**OPERATOR_ENV, **change})


def test_static_keys_must_be_digests() -> None:
    env = {"TENANTRY_TENANT": "a", "TENANTRY_CLICKHOUSE_URL": "chdb:///x"}
    with pytest.raises(SettingsError, match="sha256"):
        from_env({**env, "TENANTRY_INGEST_KEYS": "plain-key"})

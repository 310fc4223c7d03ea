"""The environment contract with the operator's ingestion Deployment."""

from __future__ import annotations

import pytest
from tenantry_operator import builders, normalize
from tenantry_operator.model import TenantModel

from ingestion import settings
from ingestion.settings import Settings, SettingsError, from_env
from tenantry import contract
from tenantry.settings import env_name

DIGEST = settings.key_digest("secret-key")
# What the tenant's Secrets hold, by (secret, key): test inputs, not copies of anything.
SECRET_VALUES = {
    ("redis-credentials", "password"): "r-pass",
    ("clickhouse-credentials", "writer-password"): "p@ss/word",
    ("ingestion-credentials", "internal-token"): "internal",
}
MODEL = normalize.tenant_model(
    {
        "apiVersion": "tenantry.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": "acme-prod"},
        "spec": {"plan": "growth", "retentionDays": 90},
    },
    controlplane_url="http://controlplane.tenantry-system.svc:8000/",
)


def pod_env(model: TenantModel) -> dict[str, str]:
    """The ingestion container's environment as the kubelet gives it: rendered by the
    operator's builder, each secretKeyRef resolved from SECRET_VALUES."""
    (deployment,) = [
        o
        for o in builders.build(model)
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "ingestion"
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for var in container["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = SECRET_VALUES[(ref["name"], ref["key"])]
    return env


OPERATOR_ENV = pod_env(MODEL)


def test_operator_environment_is_read() -> None:
    s = from_env(OPERATOR_ENV)
    assert (s.tenant, s.listen_host, s.listen_port) == ("acme-prod", "0.0.0.0", 8080)  # noqa: S104
    assert (s.redis_port, s.redis_password) == (6379, "r-pass")
    assert s.redis_host.startswith("redis.tenant-acme-prod.svc")
    assert s.clickhouse_url.startswith("http://writer:p%40ss%2Fword@clickhouse.tenant-acme-prod.")
    assert (s.clickhouse_cluster, s.retention_days) == (MODEL.cluster_name, 90)
    assert s.controlplane_url == "http://controlplane.tenantry-system.svc:8000"
    assert s.provision is False


def test_ingestion_writes_to_the_database_the_operator_creates() -> None:
    """The pod's env, as the builder renders it, makes ingestion write to exactly the
    database the operator's schema step creates and the control plane queries."""
    s = from_env(OPERATOR_ENV)
    assert s.database == MODEL.database == "t_acme_prod"
    assert s.table == "t_acme_prod.events"
    assert s.database == contract.tenant_database("acme-prod")
    # Without the variable (a standalone run), the same shared rule applies.
    without = {k: v for k, v in OPERATOR_ENV.items() if k != "TENANTRY_CLICKHOUSE_DATABASE"}
    assert from_env(without).database == MODEL.database


@pytest.mark.parametrize("tenant", ["a", "acme-prod", "1st", "x-1-y", "a" * 50])
def test_one_database_rule_for_every_tenant_name(tenant: str) -> None:
    model = normalize.tenant_model({"metadata": {"name": tenant}, "spec": {}})
    standalone = {
        "TENANTRY_TENANT": tenant,
        "TENANTRY_CLICKHOUSE_URL": "chdb:///x",
        "TENANTRY_INGEST_KEYS": DIGEST,
    }
    assert from_env(standalone).database == model.database == contract.tenant_database(tenant)
    in_pod = pod_env(model) | {"TENANTRY_INGEST_KEYS": DIGEST}
    assert from_env(in_pod).database == model.database


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
        (
            {"TENANTRY_RETENTION_DAYS": "0"},
            "TENANTRY_RETENTION_DAYS: .* greater than or equal to 1",
        ),
        ({"TENANTRY_INGEST_FLUSH_SECONDS": "x"}, "TENANTRY_INGEST_FLUSH_SECONDS: .* number"),
        ({"TENANTRY_INGEST_PROVISION": "maybe"}, "TENANTRY_INGEST_PROVISION: .* boolean"),
        ({"TENANTRY_REDIS_PORT": "70000"}, "TENANTRY_REDIS_PORT: .* less than or equal to 65535"),
        ({"TENANTRY_INGEST_RATE_LIMIT_PER_KEY": "0"}, "TENANTRY_INGEST_RATE_LIMIT_PER_KEY"),
        ({"TENANTRY_INGEST_CLAIM_IDLE_SECONDS": "1"}, "must exceed"),
    ],
)
def test_bad_environments_say_what_is_wrong(change: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        from_env({**OPERATOR_ENV, **change})


def test_every_variable_the_operator_renders_is_a_setting() -> None:
    """No variable of the pod's env is silently ignored (a renamed field would be)."""
    known = {env_name(Settings, name) for name in Settings.model_fields}
    assert set(OPERATOR_ENV) <= known, set(OPERATOR_ENV) - known


def test_secrets_are_not_echoed() -> None:
    s = from_env(OPERATOR_ENV)
    assert "r-pass" not in repr(s)
    assert "internal" not in repr(s)
    assert "p@ss/word" not in repr(s)


def test_static_keys_must_be_digests() -> None:
    env = {"TENANTRY_TENANT": "a", "TENANTRY_CLICKHOUSE_URL": "chdb:///x"}
    with pytest.raises(SettingsError, match="sha256"):
        from_env({**env, "TENANTRY_INGEST_KEYS": "plain-key"})

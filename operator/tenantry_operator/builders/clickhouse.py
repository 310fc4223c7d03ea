"""ClickHouse: one StatefulSet per host (shard x replica), its config and its Services.

Why one StatefulSet per host rather than one per shard: each host gets its own
ConfigMap (macros differ per host), its own config hash and its own rollout step, so
the apply step can restart hosts one at a time, Ready before the next, and scaling out
adds StatefulSets without touching the existing ones.

Config is split by what a change costs:

* ``clickhouse-config`` (shared) ``cluster.xml`` and ``users.xml``: remote_servers,
  Keeper, users. ClickHouse reloads these files while running, so changing them (a
  new shard) must not restart anybody; they are deliberately *not* in any host's hash.
* ``clickhouse-config`` ``server.xml``: static server config (ports, logging, paths),
  identical on every host and changed only by an operator upgrade; read at start.
* ``ch-s{s}-r{r}-config`` (per host): macros and the spec's server settings, read at
  start.

The image, the resources, server.xml and the host's own config form the host's
``tenantry.io/config-hash``: a pod template change, hence a restart, exactly when that
host needs one.

Passwords are never written into a ConfigMap: users.xml and remote_servers use
``from_env``, and the env comes from the Secret ``clickhouse-credentials``. So does the
cluster's interserver secret (``<secret>`` in remote_servers, from the generated Secret
``clickhouse-interserver``): a shard runs a Distributed query only when it carries that
secret, and as the user who sent it, so ``reader`` stays ``reader`` on every shard.

users.xml is also where least privilege lives (README, "ClickHouse users and least
privilege"): ``admin`` may do everything, ``writer`` may only INSERT into the tenant's
events table, ``reader`` may only SELECT from the tenant's database, read-only; both
with the plan's limits as settings profiles pinned by constraints, and quotas.
``tests/integration/clickhouse`` loads the rendered tree in the engine and proves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenantry import contract
from tenantry.api import server_settings
from tenantry.clickhouse import schema
from tenantry.clickhouse.client import quote_identifier
from tenantry_operator import model as m
from tenantry_operator.builders import common, keeper, render

COMPONENT = "clickhouse"
SHARED_CONFIG = "clickhouse-config"
SERVICE = contract.CLICKHOUSE_SERVICE
HTTP_PORT = contract.CLICKHOUSE_HTTP_PORT
NATIVE_PORT = 9000
# ClickHouse's Prometheus endpoint (server.xml <prometheus>): the container port
# "metrics", in no Service; only the monitoring namespaces may reach it (network.py).
METRICS_PORT = 9363

# Schema before traffic: the operator sets this label on a host's pod once it has
# provisioned that host's schema (dataplane/schema_step.py); the cluster Service selects
# on it, the per-host Services (through which the operator provisions) do not. A new or
# re-created pod carries no label, so it receives no client traffic until provisioned.
SCHEMA_LABEL = "tenantry.io/schema"
SCHEMA_READY = "ready"


@dataclass(frozen=True)
class User:
    """A ClickHouse user of the tenant: where its password comes from and what it is."""

    name: str
    env: str  # the container env var users.xml reads the password from (from_env)
    profile: str
    quota: str
    manages_access: bool

    @property
    def secret_key(self) -> str:
        return contract.CLICKHOUSE_PASSWORD_KEYS[self.name]


# admin keeps the image's "default" profile and quota: it runs the schema, backups and
# data moves, which no per-query limit of a tenant's plan should cut short.
USERS: tuple[User, ...] = (
    User("admin", "CLICKHOUSE_ADMIN_PASSWORD", "default", "default", manages_access=True),
    User("writer", "CLICKHOUSE_WRITER_PASSWORD", "writer", "writer", manages_access=False),
    User("reader", "CLICKHOUSE_READER_PASSWORD", "reader", "reader", manages_access=False),
)


def host_fqdn(model: m.TenantModel, host: m.Host) -> str:
    return common.service_host(model, host.name)


def host_config_map_name(host: m.Host) -> str:
    return f"{host.name}-config"


def host_labels(host: m.Host) -> dict[str, str]:
    return {common.LABEL_SHARD: str(host.shard), common.LABEL_REPLICA: str(host.replica)}


def _check_settings(settings: tuple[tuple[str, str], ...]) -> None:
    """Setting names become XML elements of the server config: only the allow-list of
    ``tenantry.api.server_settings`` (the CRD and the model refuse the rest; this keeps
    a model built any other way from overriding paths, listeners, users or Keeper)."""
    for name, _ in settings:
        if name not in server_settings.ALLOWED:
            raise ValueError(f"ClickHouse setting name {name!r} is not allowed")


INTERSERVER_SECRET_ENV = "CLICKHOUSE_INTERSERVER_SECRET"  # noqa: S105 - an env var name


def cluster_xml(model: m.TenantModel) -> str:
    ch = model.clickhouse
    shards = [
        [host_fqdn(model, m.Host(s, r)) for r in range(ch.replicas)] for s in range(ch.shards)
    ]
    return render.text(
        "clickhouse/cluster.xml.j2",
        cluster=model.cluster_name,
        shards=shards,
        keeper_nodes=keeper.node_hosts(model),
        keeper_port=keeper.CLIENT_PORT,
        secret_env=INTERSERVER_SECRET_ENV,
    )


def server_xml() -> str:
    return render.text("clickhouse/server.xml.j2", metrics_port=METRICS_PORT)


def _table(model: m.TenantModel, table: str) -> str:
    return f"{quote_identifier(model.database)}.{quote_identifier(table)}"


def grants(model: m.TenantModel) -> dict[str, list[str]]:
    """GRANT statements per user, as users.xml takes them (no grantee: the user itself).

    writer: INSERT on ``<db>.events``; on a cluster also on ``<db>.events_local``, the
    table a Distributed insert writes through on the local shard with the writer's own
    rights (remote shards are written as the remote_servers user, admin).
    reader: SELECT on the tenant's database, so reads through the Distributed table and
    of the local tables behind it work. admin: no list, which ClickHouse reads as every
    right (and ``access_management`` lets it grant them).
    """
    tables = [schema.EVENTS, schema.EVENTS_LOCAL] if model.clickhouse.clustered else [schema.EVENTS]
    return {
        "writer": [f"GRANT INSERT ON {_table(model, table)}" for table in tables],
        "reader": [f"GRANT SELECT ON {quote_identifier(model.database)}.*"],
    }


def profiles(model: m.TenantModel) -> list[dict[str, Any]]:
    """Settings profiles of writer and reader: the plan's per-query limits, each pinned
    by a constraint between 1 and the limit (a query may lower a limit, but neither
    raise it nor lift it with 0, ClickHouse's "unlimited")."""
    reader, writer = model.clickhouse.reader, model.clickhouse.writer
    writer_limits = (
        ("max_execution_time", writer.max_execution_time_s),
        ("max_memory_usage", writer.max_memory_usage_bytes),
    )
    reader_limits = (
        ("max_execution_time", reader.max_execution_time_s),
        ("max_memory_usage", reader.max_memory_usage_bytes),
        ("max_rows_to_read", reader.max_rows_to_read),
        ("max_result_rows", reader.max_result_rows),
    )

    def profile(name: str, limits: tuple[tuple[str, int], ...], *extra: tuple[str, str]) -> Any:
        return {
            "name": name,
            "settings": [*extra, *((key, str(value)) for key, value in limits)],
            "bounds": [(key, 1, value) for key, value in limits],
        }

    # readonly=2: reads only, and settings may change (within the bounds) but readonly
    # itself may not; clients such as clickhouse-connect send settings with queries.
    # final=1: reads apply FINAL, so an event stored twice (schema.events_table) counts
    # once before the engine has merged its copies; a query may turn it off for speed.
    reader_extra = (("readonly", "2"), ("final", "1"))
    return [profile("writer", writer_limits), profile("reader", reader_limits, *reader_extra)]


def quotas(model: m.TenantModel) -> list[dict[str, Any]]:
    """Quotas of writer and reader (counted per user name, ClickHouse's default)."""
    reader, writer = model.clickhouse.reader, model.clickhouse.writer
    return [
        {"name": "writer", "duration_s": 60, "limits": [("queries", writer.queries_per_minute)]},
        {
            "name": "reader",
            "duration_s": 3600,
            "limits": [
                ("queries", reader.queries_per_hour),
                ("execution_time", reader.execution_time_per_hour_s),
            ],
        },
    ]


def users_xml(model: m.TenantModel) -> str:
    by_user = grants(model)
    users = [
        {
            "name": user.name,
            "env": user.env,
            "profile": user.profile,
            "quota": user.quota,
            "admin": user.manages_access,
            "grants": by_user.get(user.name, []),
        }
        for user in USERS
    ]
    return render.text(
        "clickhouse/users.xml.j2", users=users, profiles=profiles(model), quotas=quotas(model)
    )


def host_xml(model: m.TenantModel, host: m.Host) -> str:
    _check_settings(model.clickhouse.settings)
    return render.text(
        "clickhouse/host.xml.j2",
        cluster=model.cluster_name,
        shard=host.shard,
        replica=host.name,
        interserver_host=host_fqdn(model, host),
        settings=model.clickhouse.settings,
    )


def config_hash(model: m.TenantModel, host: m.Host) -> str:
    """What forces a restart of this host: image, resources, static and own config."""
    ch = model.clickhouse
    return common.digest(
        {
            "image": ch.image,
            "resources": common.resources(ch.resources),
            "server_config": server_xml(),
            "host_config": host_xml(model, host),
        }
    )


def config_hashes(model: m.TenantModel) -> dict[str, str]:
    """Host name -> config hash, for rollout decisions."""
    return {host.name: config_hash(model, host) for host in model.clickhouse.hosts}


def config_maps(model: m.TenantModel) -> list[common.Manifest]:
    shared = render.one(
        "clickhouse/configmap.yaml.j2",
        metadata=common.metadata(model, name=SHARED_CONFIG, component=COMPONENT),
        data={
            "server.xml": server_xml(),
            "cluster.xml": cluster_xml(model),
            "users.xml": users_xml(model),
        },
    )
    per_host = [
        render.one(
            "clickhouse/configmap.yaml.j2",
            metadata=common.metadata(
                model,
                name=host_config_map_name(host),
                component=COMPONENT,
                extra_labels=host_labels(host),
            ),
            data={"host.xml": host_xml(model, host)},
        )
        for host in model.clickhouse.hosts
    ]
    return [shared, *per_host]


def services(model: m.TenantModel) -> list[common.Manifest]:
    per_host = [
        render.one(
            "clickhouse/service.yaml.j2",
            headless=True,
            metadata=common.metadata(
                model, name=host.name, component=COMPONENT, extra_labels=host_labels(host)
            ),
            selector=common.selector(model, COMPONENT, extra=host_labels(host)),
        )
        for host in model.clickhouse.hosts
    ]
    cluster = render.one(
        "clickhouse/service.yaml.j2",
        headless=False,
        metadata=common.metadata(model, name=SERVICE, component=COMPONENT),
        selector=common.selector(model, COMPONENT, extra={SCHEMA_LABEL: SCHEMA_READY}),
    )
    return [*per_host, cluster]


def _env() -> list[dict[str, Any]]:
    return [
        *(
            common.secret_env(user.env, secret=contract.CLICKHOUSE_SECRET, key=user.secret_key)
            for user in USERS
        ),
        common.secret_env(
            INTERSERVER_SECRET_ENV,
            secret=contract.CLICKHOUSE_INTERSERVER_SECRET,
            key=contract.CLICKHOUSE_INTERSERVER_KEY,
        ),
    ]


def statefulset(model: m.TenantModel, host: m.Host) -> common.Manifest:
    ch = model.clickhouse
    extra = host_labels(host)
    shard_peers = common.selector(model, COMPONENT, extra={common.LABEL_SHARD: str(host.shard)})
    context: dict[str, Any] = {
        "metadata": common.metadata(model, name=host.name, component=COMPONENT, extra_labels=extra),
        "name": host.name,
        "replicas": common.replicas(model, 1),
        "pvc_retention": common.pvc_retention(model),
        "selector": common.selector(model, COMPONENT, extra=extra),
        "pod_labels": common.labels(model, COMPONENT, extra=extra),
        "hash_annotation": m.ANNOTATION_CONFIG_HASH,
        "config_hash": config_hash(model, host),
        "pod_security": common.pod_security_context(common.UID_CLICKHOUSE),
        # Replicas of one shard on different nodes/zones: losing one keeps the data up.
        "affinity": common.spread(shard_peers),
        "image": ch.image,
        "env": _env(),
        "resources": common.resources(ch.resources),
        "container_security": common.container_security_context(),
        "host_config_map": host_config_map_name(host),
        "metrics_port": METRICS_PORT,
        "volume_claim": common.volume_claim(
            model, name="data", component=COMPONENT, volume=ch.volume
        ),
    }
    return render.one("clickhouse/statefulset.yaml.j2", **context)


def statefulsets(model: m.TenantModel) -> list[common.Manifest]:
    return [statefulset(model, host) for host in model.clickhouse.hosts]


def pod_disruption_budgets(model: m.TenantModel) -> list[common.Manifest]:
    ch = model.clickhouse
    if ch.replicas <= 1:
        return []
    return [
        render.one(
            "clickhouse/poddisruptionbudget.yaml.j2",
            metadata=common.metadata(
                model,
                name=f"ch-s{shard}",
                component=COMPONENT,
                extra_labels={common.LABEL_SHARD: str(shard)},
            ),
            selector=common.selector(model, COMPONENT, extra={common.LABEL_SHARD: str(shard)}),
        )
        for shard in range(ch.shards)
    ]


def objects(model: m.TenantModel) -> list[common.Manifest]:
    return [
        *config_maps(model),
        *services(model),
        *statefulsets(model),
        *pod_disruption_budgets(model),
    ]

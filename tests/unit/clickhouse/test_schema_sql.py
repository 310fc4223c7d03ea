"""The tenant schema SQL as text: layouts, engine, keys, TTL, Distributed."""

from __future__ import annotations

import pytest

from tenantry.clickhouse import schema
from tenantry.clickhouse.schema import TenantSchema

SINGLE = TenantSchema(database="acme", retention_days=30)
CLUSTER = TenantSchema(database="acme", retention_days=90, cluster="tenant", shards=2, replicas=3)

GOLDEN_SINGLE_EVENTS = """\
CREATE TABLE IF NOT EXISTS `acme`.`events`
(
    `event_id` UUID,
    `timestamp` DateTime64(3, 'UTC'),
    `event` LowCardinality(String),
    `user_id` String,
    `properties` String,
    `received_at` DateTime64(3, 'UTC') DEFAULT now64(3),
    `batch_id` String DEFAULT '',
    INDEX timestamp_minmax timestamp TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (event, toDate(timestamp), user_id, timestamp, event_id)
TTL timestamp + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity = 8192"""


def test_single_node_events_table_golden() -> None:
    assert schema.events_table(SINGLE) == GOLDEN_SINGLE_EVENTS


def test_single_node_has_no_cluster_and_no_distributed_table() -> None:
    statements = schema.schema_statements(SINGLE)
    assert statements == [
        "CREATE DATABASE IF NOT EXISTS `acme`",
        GOLDEN_SINGLE_EVENTS,
    ]
    assert schema.distributed_table(SINGLE) is None
    assert not SINGLE.clustered
    assert SINGLE.local_table == "events"
    assert all("ON CLUSTER" not in s for s in statements)


def test_cluster_name_with_one_host_stays_single_node() -> None:
    one_host = TenantSchema(database="acme", retention_days=30, cluster="tenant")
    assert not one_host.clustered
    assert schema.schema_statements(one_host) == schema.schema_statements(SINGLE)


def test_cluster_layout_replicated_local_table_and_distributed() -> None:
    create_db, local, distributed = schema.schema_statements(CLUSTER)

    assert create_db == "CREATE DATABASE IF NOT EXISTS `acme`"
    assert local.startswith("CREATE TABLE IF NOT EXISTS `acme`.`events_local`\n")
    assert (
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/acme/events_v2', "
        "'{replica}')" in local
    )
    assert "replicated_deduplication_window = 1000" in local
    assert "non_replicated" not in local
    assert "TTL timestamp + INTERVAL 90 DAY" in local
    assert distributed == (
        "CREATE TABLE IF NOT EXISTS `acme`.`events`\n"
        "AS `acme`.`events_local`\n"
        "ENGINE = Distributed('tenant', 'acme', 'events_local', cityHash64(user_id))"
    )


@pytest.mark.parametrize(("shards", "replicas"), [(2, 1), (1, 2)])
def test_any_second_host_makes_a_cluster(shards: int, replicas: int) -> None:
    tenant = TenantSchema(
        database="acme", retention_days=1, cluster="c", shards=shards, replicas=replicas
    )
    assert tenant.clustered
    assert tenant.local_table == "events_local"


@pytest.mark.parametrize(
    ("shards", "replicas", "replicated"), [(1, 1, False), (4, 1, False), (1, 2, True), (3, 3, True)]
)
def test_replicated_engine_exactly_when_shards_have_replicas(
    shards: int, replicas: int, replicated: bool
) -> None:
    """N x 1 stores rows in a plain MergeTree (no Keeper needed); replicas need Keeper."""
    tenant = TenantSchema(
        database="acme", retention_days=1, cluster="c", shards=shards, replicas=replicas
    )
    assert tenant.replicated is replicated
    assert schema.events_engine(tenant).startswith("Replicated") is replicated
    statements = schema.schema_statements(tenant)
    assert any("Replicated" in s for s in statements) is replicated
    assert not any("ON CLUSTER" in s for s in statements)


def test_the_storing_table_deduplicates_on_event_id() -> None:
    """ReplacingMergeTree keeps one row per sorting key: event_id must be in it (or
    distinct events of one user in one millisecond would collapse), last."""
    for tenant in (SINGLE, CLUSTER):
        engine = schema.events_engine(tenant)
        assert schema.deduplicates(engine)
        assert schema.ORDER_BY.strip("()").split(", ")[-1] == "event_id"
        assert f"ORDER BY {schema.ORDER_BY}\n" in schema.events_table(tenant)
    assert not schema.deduplicates("MergeTree")
    assert not schema.deduplicates("ReplicatedMergeTree")


def test_version_1_table_differs_only_in_engine_and_sorting_key() -> None:
    now = schema.events_table(SINGLE, engine="MergeTree")
    v1 = schema.events_table(SINGLE, engine="MergeTree", order_by=schema.ORDER_BY_V1)
    assert f"ORDER BY {schema.ORDER_BY_V1}\n" in v1
    assert "event_id" not in schema.ORDER_BY_V1
    assert v1.replace(schema.ORDER_BY_V1, schema.ORDER_BY) == now


def test_modify_ttl_targets_the_storing_table() -> None:
    assert schema.modify_ttl(SINGLE) == (
        "ALTER TABLE `acme`.`events` MODIFY TTL timestamp + INTERVAL 30 DAY"
    )
    assert schema.modify_ttl(CLUSTER) == (
        "ALTER TABLE `acme`.`events_local` MODIFY TTL timestamp + INTERVAL 90 DAY"
    )


def test_ttl_days_read_back_from_engine_full() -> None:
    engine_full = (
        "MergeTree PARTITION BY toYYYYMM(timestamp) ORDER BY (event, toDate(timestamp)) "
        "TTL timestamp + toIntervalDay(45) SETTINGS index_granularity = 8192"
    )
    assert schema.ttl_days_of(engine_full) == 45
    assert schema.ttl_days_of("MergeTree ORDER BY x SETTINGS index_granularity = 8192") is None


def test_materialized_view_single_and_cluster() -> None:
    select = "SELECT event, countState() AS n FROM acme.events GROUP BY event"
    single = schema.materialized_view(SINGLE, name="by_event", select=select, order_by="event")
    assert single == (
        "CREATE MATERIALIZED VIEW IF NOT EXISTS `acme`.`by_event`\n"
        "ENGINE = AggregatingMergeTree\nORDER BY event\n"
        f"AS {select}"
    )
    clustered = schema.materialized_view(
        CLUSTER,
        name="by_event",
        select=select,
        order_by="event",
        engine="SummingMergeTree",
        partition_by="tuple()",
    )
    assert "ON CLUSTER" not in clustered
    assert (
        "ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/acme/by_event', "
        "'{replica}')\nPARTITION BY tuple()\n" in clustered
    )
    assert schema.drop_view(CLUSTER, "by_event") == ("DROP VIEW IF EXISTS `acme`.`by_event` SYNC")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"database": "acme-prod", "retention_days": 30}, "identifier"),
        ({"database": "acme`; DROP", "retention_days": 30}, "identifier"),
        ({"database": "acme", "retention_days": 0}, "retention_days"),
        ({"database": "acme", "retention_days": 30, "shards": 2}, "cluster name"),
        ({"database": "acme", "retention_days": 30, "cluster": "c", "replicas": 0}, "at least"),
        ({"database": "acme", "retention_days": 30, "cluster": "bad name"}, "identifier"),
    ],
)
def test_invalid_schemas_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TenantSchema(**kwargs)  # type: ignore[arg-type]


def test_materialized_view_refuses_odd_names() -> None:
    with pytest.raises(ValueError, match="identifier"):
        schema.materialized_view(SINGLE, name="a b", select="SELECT 1", order_by="tuple()")
    with pytest.raises(ValueError, match="identifier"):
        schema.materialized_view(
            SINGLE, name="v", select="SELECT 1", order_by="tuple()", engine="MergeTree('x')"
        )

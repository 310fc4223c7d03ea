"""The tenant schema, run for real on the engine through both adapters."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from tenantry.clickhouse import layout, schema
from tenantry.clickhouse.client import ClickHouseClient, json_each_row
from tenantry.clickhouse.schema import TenantSchema
from tests.integration.clickhouse.events import NOW, events


def _table_info(client: ClickHouseClient, database: str) -> dict[str, object]:
    rows = client.query(
        "SELECT engine, partition_key, sorting_key, engine_full, create_table_query, uuid "
        "FROM system.tables WHERE database = {db:String} AND name = 'events'",
        {"db": database},
    )
    assert len(rows) == 1
    return rows[0]


def _count(client: ClickHouseClient, database: str) -> int:
    rows = client.query(f"SELECT count() AS n FROM `{database}`.events")  # noqa: S608 - generated test database name
    return int(rows[0]["n"])


def test_provision_creates_single_node_events_table(
    client: ClickHouseClient, database: str
) -> None:
    report = layout.provision(client, TenantSchema(database=database, retention_days=30))

    assert report.created
    assert not report.ttl_altered
    info = _table_info(client, database)
    assert info["engine"] == "ReplacingMergeTree"
    assert info["partition_key"] == "toYYYYMM(timestamp)"
    assert info["sorting_key"] == "event, toDate(timestamp), user_id, timestamp, event_id"
    assert schema.ttl_days_of(str(info["engine_full"])) == 30
    assert "non_replicated_deduplication_window = 1000" in str(info["engine_full"])
    columns = client.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = 'events'",
        {"db": database},
    )
    assert [c["name"] for c in columns] == [name for name, _ in schema.EVENT_COLUMNS]


def test_has_schema_once_provisioned(client: ClickHouseClient, database: str) -> None:
    tenant = TenantSchema(database=database, retention_days=30)
    assert not layout.has_schema(client, tenant)
    layout.provision(client, tenant)
    assert layout.has_schema(client, tenant)


def test_provision_twice_changes_nothing(client: ClickHouseClient, database: str) -> None:
    wanted = TenantSchema(database=database, retention_days=30)
    layout.provision(client, wanted)
    client.insert(f"{database}.events", events(5))
    before = _table_info(client, database)

    again = layout.provision(client, wanted)

    assert not again.changed
    assert all(s.startswith("CREATE") for s in again.statements)
    assert _table_info(client, database) == before
    assert _count(client, database) == 5


def test_retention_change_alters_ttl_in_place(client: ClickHouseClient, database: str) -> None:
    layout.provision(client, TenantSchema(database=database, retention_days=30))
    client.insert(f"{database}.events", events(10))
    table_uuid = _table_info(client, database)["uuid"]

    report = layout.provision(client, TenantSchema(database=database, retention_days=7))

    assert report.ttl_altered
    assert report.previous_ttl_days == 30
    assert not report.created
    assert report.statements[-1].startswith(f"ALTER TABLE `{database}`.`events` MODIFY TTL")
    info = _table_info(client, database)
    assert schema.ttl_days_of(str(info["engine_full"])) == 7
    assert info["uuid"] == table_uuid  # same table, not a rebuild
    assert _count(client, database) == 10
    assert not layout.provision(client, TenantSchema(database=database, retention_days=7)).changed


def test_ttl_drops_rows_older_than_retention(client: ClickHouseClient, database: str) -> None:
    layout.provision(client, TenantSchema(database=database, retention_days=7))
    old = events(3, start=NOW - dt.timedelta(days=40), names=("old",))
    client.insert(f"{database}.events", old + events(4, names=("recent",)))

    client.command(f"OPTIMIZE TABLE `{database}`.events FINAL")

    sql = f"SELECT event, count() AS n FROM `{database}`.events GROUP BY event"  # noqa: S608 - generated test database name
    rows = client.query(sql)
    assert rows == [{"event": "recent", "n": 4}]


def test_insert_and_query_events_round_trip(client: ClickHouseClient, database: str) -> None:
    layout.provision(client, TenantSchema(database=database, retention_days=30))
    sent = events(3)
    client.insert(f"{database}.events", sent)

    rows = client.query(
        "SELECT event_id, timestamp, event, user_id, properties, batch_id, received_at "  # noqa: S608
        f"FROM `{database}`.events WHERE event_id = {{id:UUID}}",
        {"id": sent[1]["event_id"]},
    )

    assert len(rows) == 1
    row = rows[0]
    assert row["event_id"] == sent[1]["event_id"]
    assert isinstance(row["event_id"], uuid.UUID)
    assert row["timestamp"] == sent[1]["timestamp"]
    assert row["timestamp"].utcoffset() == dt.timedelta(0)
    assert {k: row[k] for k in ("event", "user_id", "properties", "batch_id")} == {
        k: sent[1][k] for k in ("event", "user_id", "properties", "batch_id")
    }
    assert abs(row["received_at"] - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)


def test_insert_json_lines_and_dedup(client: ClickHouseClient, database: str) -> None:
    """The ingestion writer's path: NDJSON bytes straight from the stream."""
    layout.provision(client, TenantSchema(database=database, retention_days=30))
    rows = events(20)
    ndjson = json_each_row(rows).encode()

    client.insert_json(f"{database}.events", ndjson, dedup_token="stream-1-20")
    client.insert_json(f"{database}.events", ndjson, dedup_token="stream-1-20")
    client.insert_json(f"{database}.events", b"", dedup_token="empty")

    assert _count(client, database) == 20
    got = client.query(
        "SELECT event_id, timestamp FROM {db:Identifier}.events ORDER BY timestamp DESC",
        {"db": database},
    )
    assert [(r["event_id"], r["timestamp"]) for r in got] == [
        (r["event_id"], r["timestamp"]) for r in rows
    ]


def test_an_inserts_settings_reach_the_engine(client: ClickHouseClient, database: str) -> None:
    """`settings` of an insert apply to it, through both adapters: with the writer's
    `EVENTS_INSERT_SETTINGS` the copies of an event within one insert are stored as
    sent (merges stopped) and seen once with FINAL; without them the engine collapses
    them while writing the part. The dedup token still drops a retried insert."""
    layout.provision(client, TenantSchema(database=database, retention_days=30))
    table = f"{database}.events"
    client.command(f"SYSTEM STOP MERGES `{database}`.events")
    twice = json_each_row(events(10) * 2).encode()

    client.insert_json(table, twice, dedup_token="a", settings=schema.EVENTS_INSERT_SETTINGS)
    client.insert_json(table, twice, dedup_token="a", settings=schema.EVENTS_INSERT_SETTINGS)
    assert _count(client, database) == 20
    rows = client.query(f"SELECT count() AS n FROM `{database}`.events FINAL")  # noqa: S608
    assert int(rows[0]["n"]) == 10

    client.insert_json(table, twice, dedup_token="b")
    assert _count(client, database) == 30  # 20 + the 10 events of one collapsed insert


def test_dedup_token_drops_a_retried_batch(client: ClickHouseClient, database: str) -> None:
    layout.provision(client, TenantSchema(database=database, retention_days=30))
    batch = events(50)
    table = f"{database}.events"

    client.insert(table, batch, dedup_token="batch-1")
    client.insert(table, batch, dedup_token="batch-1")  # the writer retries after a crash
    assert _count(client, database) == 50

    client.insert(table, batch, dedup_token="batch-2")  # a new batch with the same rows
    assert _count(client, database) == 100


def test_materialized_view_keeps_a_dashboard_aggregate(
    client: ClickHouseClient, database: str
) -> None:
    tenant = TenantSchema(database=database, retention_days=30)
    layout.provision(client, tenant)
    client.command(
        schema.materialized_view(
            tenant,
            name="daily_events",
            select=(
                "SELECT event, toDate(timestamp) AS day, countState() AS events, "  # noqa: S608
                f"uniqState(user_id) AS users FROM `{database}`.events GROUP BY event, day"
            ),
            order_by="(event, day)",
            partition_by="toYYYYMM(day)",
        )
    )
    client.insert(f"{database}.events", events(100), dedup_token="a")
    client.insert(f"{database}.events", events(30, names=("purchase",)), dedup_token="b")

    from_view = client.query(
        "SELECT event, day, countMerge(events) AS events, uniqMerge(users) AS users "  # noqa: S608
        f"FROM `{database}`.daily_events GROUP BY event, day ORDER BY event, day"
    )
    direct = client.query(
        "SELECT event, toDate(timestamp) AS day, count() AS events, uniq(user_id) AS users "  # noqa: S608
        f"FROM `{database}`.events GROUP BY event, day ORDER BY event, day"
    )
    assert from_view == direct
    assert {r["event"] for r in from_view} == {"signup", "view", "purchase"}
    assert sum(r["events"] for r in from_view) == 130

    client.command(schema.drop_view(tenant, "daily_events"))
    assert not client.query(f"EXISTS TABLE `{database}`.daily_events")[0]["result"]


@pytest.mark.parametrize(("shards", "replicas"), [(2, 1), (1, 3), (3, 2)])
def test_cluster_ddl_is_valid_clickhouse_sql(
    chdb_client: ClickHouseClient, shards: int, replicas: int
) -> None:
    """Per-host DDL, never ON CLUSTER; parsed here (the session's engine has no
    `tenant` cluster): tests/integration/clickhouse/test_layouts.py runs it on hosts."""
    tenant = TenantSchema(
        database="acme", retention_days=90, cluster="tenant", shards=shards, replicas=replicas
    )
    statements = [
        *schema.schema_statements(tenant),
        schema.modify_ttl(tenant),
        schema.materialized_view(
            tenant, name="daily", select="SELECT 1 AS x FROM acme.events_local", order_by="x"
        ),
        schema.drop_view(tenant, "daily"),
    ]
    formatted = [
        chdb_client.query("SELECT formatQuery({q:String}) AS f", {"q": s})[0]["f"]
        for s in statements
    ]
    assert not any("ON CLUSTER" in f for f in formatted)
    create = formatted[1]
    path = "/clickhouse/tables/{shard}/acme/events_v2"
    engine = f"ReplicatedReplacingMergeTree('{path}', '{{replica}}')"
    assert (engine in create) == (replicas > 1)
    assert "TTL timestamp + toIntervalDay(90)" in create
    assert formatted[2].startswith("CREATE TABLE IF NOT EXISTS acme.events AS acme.events_local")
    assert "Distributed('tenant', 'acme', 'events_local', cityHash64(user_id))" in formatted[2]
    assert formatted[3].startswith("ALTER TABLE acme.events_local\n    (MODIFY TTL")
    view_engine = "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/acme/daily'"
    assert (view_engine in formatted[4]) == (replicas > 1)

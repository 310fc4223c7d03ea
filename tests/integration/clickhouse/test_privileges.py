"""Least privilege, proven on the engine (issue 14, item 3).

The users, grants, settings profiles and quotas are the rendered users.xml, loaded by
chDB from the tree the pod mounts (``tests.support.chconfig``). chDB runs every query
as ``default`` (see ``chconfig``), so each user is proven by a load in which a copy of
that user's rendered element stands in for ``default``: whatever the engine allows or
refuses there, it allows or refuses the user.

One data directory per test: admin creates the tenant's schema with the project's own
DDL (``tenantry.clickhouse.schema``) plus a second table in the tenant's database and
a table in another database, then writer and reader each run what they must be able
to do and what they must be refused, in the same directory.

Layouts: a single host (``<db>.events``, MergeTree) and a cluster (``events_local`` on
each host, ``events`` a Distributed table over it). On the cluster, ``events_local``
is created as a MergeTree rather than a ReplicatedMergeTree (chDB has no Keeper here)
and without ON CLUSTER: the grants concern table names, not engines. The loaded host's
own name resolves to itself (as in its pod: ``local_hosts``), so the engine treats its
replica in remote_servers as local, exactly as a server does: a Distributed insert
writes this shard's rows into ``events_local`` with the writer's rights and queues the
other shards' rows (sent as the remote_servers user, admin); a Distributed read reads
this shard as the reader and, since the other hosts' names do not resolve here, skips
them with ``skip_unavailable_shards``.

Not provable on chDB: that a quota stops a user. chDB does not count the queries of
its own connections against quotas (measured: ``system.quota_usage`` shows 1 query
after 6, and a quota of 2 refuses none), so the quotas are proven as ClickHouse reads
them (``system.quotas``, ``system.quota_limits``, in ``test_server_config``), not by
exhausting them.
"""

# ruff: noqa: S608 - the SQL is built from our own constants and quoted identifiers
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from tenantry_operator import model as m
from tenantry_operator.builders import clickhouse as ch_builder

from controlplane.dashboards.service import panel_limits
from controlplane.settings import Settings
from tenantry.clickhouse import schema
from tenantry.clickhouse.client import quote_identifier
from tests.support import chconfig
from tests.unit.operator import fixtures

ENV = {
    "CLICKHOUSE_ADMIN_PASSWORD": "admin-secret-1",
    "CLICKHOUSE_WRITER_PASSWORD": "writer-secret-2",
    "CLICKHOUSE_READER_PASSWORD": "reader-secret-3",
}
DENIED = {"ACCESS_DENIED", "READONLY"}
# clickhouse-connect's first queries on a new client (its init sequence) and the
# settings it then sends with every request: every user of ours connects with it.
CONNECT = (
    "SELECT version(), timezone()",
    "SELECT name, value, readonly FROM system.settings LIMIT 10000",
    "SELECT 1 AS check",
    "SELECT 1 SETTINGS date_time_input_format = 'best_effort',"
    " cast_string_to_dynamic_use_inference = 1",
)
# One event as the ingestion writer sends it (JSONEachRow, the columns it fills), of
# today: the table's TTL drops rows older than the retention as they are inserted.
# Table functions that reach outside the tenant's tables: panel SQL is the customer's,
# so the engine itself must refuse them (they need grants nobody of ours has).
OUTSIDE = (
    "SELECT * FROM url('http://127.0.0.1:9/', 'CSV', 'x String')",
    "SELECT * FROM file('/etc/hostname', 'LineAsString')",
    "SELECT * FROM remote('127.0.0.1', system.one)",
)
ROW = (
    '{{"event_id": "00000000-0000-4000-8000-{n:012d}", "timestamp": "{now}",'
    ' "event": "page_view", "user_id": "u{n}", "properties": "{{}}", "batch_id": "b{n}"}}'
)


def _local(clustered: bool) -> str:
    """The table that stores the rows on a host."""
    return schema.EVENTS_LOCAL if clustered else schema.EVENTS


def _q(*parts: str) -> str:
    return ".".join(quote_identifier(p) for p in parts)


class Tenant:
    """One host's rendered tree and a data directory shared by the loads."""

    def __init__(self, name: str, root: Path) -> None:
        self.model = fixtures.model(name)
        self.host = self.model.clickhouse.hosts[0]
        self.pod = chconfig.host_files(self.model, self.host)
        self.root = root
        # On the cluster, this host's own name resolves to itself (as in its pod), so
        # the engine takes its replica in remote_servers for the local one.
        self.local_hosts = (
            [ch_builder.host_fqdn(self.model, self.host)] if self.model.clickhouse.clustered else []
        )
        self.db = self.model.database

    def run(self, user: str, queries: list[str]) -> list[chconfig.Result]:
        loaded = chconfig.load(
            chconfig.as_user(self.pod, user),
            self.root,
            env=ENV,
            queries=queries,
            local_hosts=self.local_hosts,
        )
        assert loaded.started, loaded.error
        return loaded.results

    def insert(self, table: str, n: int, *settings: str, rows: int = 1) -> str:
        clause = f" SETTINGS {', '.join(settings)}" if settings else ""
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.000")
        data = "\n".join(ROW.format(n=i, now=now) for i in range(n, n + rows))
        return f"INSERT INTO {_q(self.db, table)}{clause} FORMAT JSONEachRow {data}"

    def create_schema(self) -> None:
        clustered = self.model.clickhouse.clustered
        single = schema.TenantSchema(database=self.db, retention_days=self.model.retention_days)
        statements = [schema.create_database(single)]
        if clustered:
            cluster = schema.TenantSchema(
                database=self.db,
                retention_days=self.model.retention_days,
                cluster=self.model.cluster_name,
                shards=self.model.clickhouse.shards,
                replicas=self.model.clickhouse.replicas,
            )
            local = schema.events_table(single).replace(
                _q(self.db, schema.EVENTS), _q(self.db, schema.EVENTS_LOCAL), 1
            )
            distributed = schema.distributed_table(cluster)
            assert distributed is not None
            on_cluster = f" ON CLUSTER {quote_identifier(self.model.cluster_name)}"
            statements += [local, distributed.replace(on_cluster, "")]
        else:
            statements.append(schema.events_table(single))
        statements += [
            f"CREATE TABLE {_q(self.db, 'side')} (x UInt8) ENGINE = MergeTree ORDER BY x",
            "CREATE DATABASE other",
            "CREATE TABLE other.secret (x UInt8) ENGINE = MergeTree ORDER BY x",
            "INSERT INTO other.secret VALUES (42)",
            self.insert(_local(clustered), 0),
        ]
        results = self.run("admin", statements)
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]


def expect(results: list[chconfig.Result], cases: list[tuple[str, str | None]]) -> None:
    """Each case: (what, None) must succeed; (what, "denied"/an error name) must fail."""
    assert len(results) == len(cases)
    wrong = []
    for (what, outcome), result in zip(cases, results, strict=True):
        if outcome is None and not result.ok:
            wrong.append(f"{what}: refused: {result.error}")
        elif outcome == "denied" and (result.ok or result.error_name() not in DENIED):
            wrong.append(f"{what}: not denied: {result.error or result.rows}")
        elif outcome not in (None, "denied") and (result.ok or result.error_name() != outcome):
            wrong.append(f"{what}: expected {outcome}: {result.error or result.rows}")
    assert not wrong, "\n".join(wrong)


@pytest.fixture(params=["tenant-starter", "tenant-sharded"], ids=["single-host", "cluster"])
def tenant(request: pytest.FixtureRequest, tmp_path: Path) -> Tenant:
    t = Tenant(request.param, tmp_path)
    assert t.model.clickhouse.clustered == (request.param == "tenant-sharded")
    t.create_schema()
    return t


def test_writer_inserts_into_the_events_table_only(tenant: Tenant) -> None:
    t, w = tenant, tenant.model.clickhouse.writer
    db = t.db
    # what ingestion's writer sends with an insert (http_client._raw_insert): its token
    # and the writer's insert settings, which its profile must let it set
    sent = [
        "insert_deduplication_token = 'batch-1'",
        *(f"{name} = {value}" for name, value in schema.EVENTS_INSERT_SETTINGS.items()),
    ]
    cases: list[tuple[str, str | None]] = [(q, None) for q in CONNECT]
    cases += [
        ("insert into events with a dedup token and the writer's settings", None),
        ("the same batch again (deduplicated, not refused)", None),
        ("SELECT from events", "denied"),
        ("INSERT into another table of the tenant", "denied"),
        ("INSERT into another database", "denied"),
        ("SELECT from another database", "denied"),
        ("INSERT INTO FUNCTION url(): sending rows out", "denied"),
        ("CREATE TABLE", "denied"),
        ("ALTER TABLE", "denied"),
        ("DROP TABLE", "denied"),
        ("TRUNCATE", "denied"),
        ("CREATE USER", "denied"),
        ("its profile's limits are the plan's", None),
        ("raising max_execution_time past the plan's", "SETTING_CONSTRAINT_VIOLATION"),
        ("lifting max_memory_usage with 0", "SETTING_CONSTRAINT_VIOLATION"),
        ("SET profile = 'default' (allowed: SET profile is not access-checked)", None),
        ("... which lifts no limit", None),
    ]
    queries = [
        *CONNECT,
        t.insert(schema.EVENTS, 1, *sent),
        t.insert(schema.EVENTS, 1, *sent),
        f"SELECT count() FROM {_q(db, schema.EVENTS)}",
        f"INSERT INTO {_q(db, 'side')} VALUES (1)",
        "INSERT INTO other.secret VALUES (1)",
        "SELECT * FROM other.secret",
        "INSERT INTO FUNCTION url('http://127.0.0.1:9/', 'CSV', 'x String') VALUES ('a')",
        f"CREATE TABLE {_q(db, 'mine')} (x UInt8) ENGINE = Memory",
        f"ALTER TABLE {_q(db, schema.EVENTS)} DELETE WHERE 1",
        f"DROP TABLE {_q(db, 'side')}",
        f"TRUNCATE TABLE {_q(db, 'side')}",
        "CREATE USER intruder",
        "SELECT getSetting('max_execution_time'), getSetting('max_memory_usage')",
        f"SELECT 1 SETTINGS max_execution_time = {w.max_execution_time_s + 1}",
        "SELECT 1 SETTINGS max_memory_usage = 0",
        "SET profile = 'default'",
        "SELECT getSetting('max_execution_time'), getSetting('max_memory_usage')",
    ]
    if t.model.clickhouse.clustered:
        cases.append(("insert into events_local (a Distributed insert's local shard)", None))
        queries.append(t.insert(schema.EVENTS_LOCAL, 2))
    results = t.run("writer", queries)
    expect(results, cases)
    plan = [[float(w.max_execution_time_s), w.max_memory_usage_bytes]]
    assert results[len(CONNECT) + 12].rows == plan
    assert results[len(CONNECT) + 16].rows == plan  # after SET profile = 'default'

    # the rows arrived, once (the retry was deduplicated): admin counts them
    clustered = t.model.clickhouse.clustered
    stored = t.run("admin", [f"SELECT count() FROM {_q(db, _local(clustered))}"])
    # single host: the seed row and the batch once. Cluster: the seed row and the direct
    # insert into events_local; the Distributed inserts wait in its queue for the remote
    # shards (all of the rendered cluster's hosts are remote from here).
    assert stored[0].rows == [[2]]


def test_reader_reads_the_tenant_database_only_within_the_plan(tenant: Tenant) -> None:
    t, r = tenant, tenant.model.clickhouse.reader
    db = t.db
    clustered = t.model.clickhouse.clustered
    # exactly what the control plane sends with a panel query, for this tenant's plan
    clause = panel_limits(Settings(), {"plan": t.model.plan}).clause()
    events = (
        f"SELECT count() FROM {_q(db, schema.EVENTS)} SETTINGS skip_unavailable_shards = 1"
        if clustered
        else f"SELECT count() FROM {_q(db, schema.EVENTS)}"
    )
    cases: list[tuple[str, str | None]] = [(q, None) for q in CONNECT]
    cases += [
        ("SELECT the events", None),
        ("USE the tenant database", None),
        ("a panel query with the control plane's SETTINGS", None),
        ("SELECT the table that stores the rows", None),
        ("INSERT into events", "denied"),
        ("ALTER TABLE", "denied"),
        ("CREATE TABLE", "denied"),
        ("DROP TABLE", "denied"),
        ("SELECT from another database", "denied"),
        ("url(): a request from the server (SSRF)", "denied"),
        ("file(): a file of the server", "denied"),
        ("remote(): another server", "denied"),
        ("CREATE USER", "denied"),
        ("SET readonly = 0", "denied"),
        ("its profile's limits are the plan's", None),
        ("raising max_execution_time past the plan's", "SETTING_CONSTRAINT_VIOLATION"),
        ("lifting max_execution_time with 0", "SETTING_CONSTRAINT_VIOLATION"),
        ("raising max_result_rows past the plan's", "SETTING_CONSTRAINT_VIOLATION"),
        ("raising max_memory_usage past the plan's", "SETTING_CONSTRAINT_VIOLATION"),
        ("SET profile = 'readonly' (the image's; readonly may not change)", "denied"),
        ("a query over its max_execution_time", "TIMEOUT_EXCEEDED"),
    ]
    queries = [
        *CONNECT,
        events,
        f"USE {quote_identifier(db)}",
        f"SELECT event, count() AS n FROM events GROUP BY event{clause}"
        + (", skip_unavailable_shards = 1" if clustered else ""),
        f"SELECT count() FROM {_q(db, _local(clustered))}",
        t.insert(schema.EVENTS, 9),
        f"ALTER TABLE {_q(db, _local(clustered))} DELETE WHERE 1",
        f"CREATE TABLE {_q(db, 'mine')} (x UInt8) ENGINE = Memory",
        f"DROP TABLE {_q(db, 'side')}",
        "SELECT * FROM other.secret",
        *OUTSIDE,
        "CREATE USER intruder",
        "SET readonly = 0",
        "SELECT getSetting('readonly'), getSetting('max_execution_time'),"
        " getSetting('max_memory_usage'), getSetting('max_rows_to_read'),"
        " getSetting('max_result_rows')",
        f"SELECT 1 SETTINGS max_execution_time = {r.max_execution_time_s + 1}",
        "SELECT 1 SETTINGS max_execution_time = 0",
        f"SELECT 1 SETTINGS max_result_rows = {r.max_result_rows + 1}",
        f"SELECT 1 SETTINGS max_memory_usage = {r.max_memory_usage_bytes + 1}",
        "SET profile = 'readonly'",
        # lowered (allowed) to keep the test short; the plan's value is checked above
        "SELECT sleepEachRow(0.5) FROM numbers(6)"
        " SETTINGS max_block_size = 1, max_execution_time = 1",
    ]
    results = t.run("reader", queries)
    expect(results, cases)
    base = len(CONNECT)
    if not clustered:
        assert results[base].rows == [[1]]  # the seed row
        assert results[base + 2].rows == [["page_view", 1]]
    plan = [float(r.max_execution_time_s), r.max_memory_usage_bytes, r.max_rows_to_read]
    assert results[base + 11 + len(OUTSIDE)].rows == [[2, *plan, r.max_result_rows]]


def test_admin_manages_the_schema_and_access(tenant: Tenant) -> None:
    t = tenant
    results = t.run(
        "admin",
        [
            f"CREATE TABLE {_q(t.db, 'scratch')} (x UInt8) ENGINE = MergeTree ORDER BY x",
            f"INSERT INTO {_q(t.db, 'scratch')} VALUES (1)",
            f"ALTER TABLE {_q(t.db, 'scratch')} DELETE WHERE x = 1",
            f"DROP TABLE {_q(t.db, 'scratch')}",
            "SELECT count() FROM other.secret",
            "SHOW GRANTS FOR writer",
            "SHOW GRANTS FOR reader",
        ],
    )
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    tables = "`events`, `events_local`" if t.model.clickhouse.clustered else "`events`"
    writer_grants = [row[0] for row in results[5].rows]
    assert len(writer_grants) == len(tables.split(", "))
    for grant in writer_grants:
        assert grant.startswith(f"GRANT INSERT ON {t.db}.")
        assert grant.endswith(" TO writer")
    assert results[6].rows == [[f"GRANT SELECT ON {t.db}.* TO reader"]]


def test_the_remote_servers_user_may_write_and_read_the_local_table() -> None:
    """Distributed sends inserts and reads to other shards as the cluster's user
    (``<user>`` of remote_servers): it must be a rendered user with INSERT and SELECT on
    ``events_local`` there."""
    model = fixtures.model("tenant-sharded")
    cluster_xml = chconfig.host_files(model, m.Host(0, 0)).files[
        "/etc/clickhouse-server/config.d/cluster.xml"
    ]
    users = {line.strip() for line in cluster_xml.splitlines() if "<user>" in line}
    assert users == {"<user>admin</user>"}


def test_a_wider_grant_is_caught(tmp_path: Path) -> None:
    """The checks above can fail: a users.xml that also let the writer read (one more
    GRANT) lets the engine run the SELECT the writer test expects refused."""
    t = Tenant("tenant-starter", tmp_path)
    t.create_schema()
    users = chconfig.users_file(t.pod)
    grant = f"<query>GRANT INSERT ON {_q(t.db, schema.EVENTS)}</query>"
    assert grant in t.pod.files[users]
    wider = t.pod.files[users].replace(
        grant, f"{grant}<query>GRANT SELECT ON {_q(t.db, schema.EVENTS)}</query>"
    )
    t.pod = chconfig.PodFiles(
        {**t.pod.files, users: wider}, t.pod.config_file, t.pod.data_dir, t.pod.env_names
    )
    (result,) = t.run("writer", [f"SELECT count() FROM {_q(t.db, schema.EVENTS)}"])
    with pytest.raises(AssertionError, match="not denied"):
        expect([result], [("SELECT from events", "denied")])


def _without(pod: chconfig.PodFiles, grant: str) -> chconfig.PodFiles:
    users = chconfig.users_file(pod)
    element = f"<query>{grant}</query>"
    assert element in pod.files[users], grant
    files = {**pod.files, users: pod.files[users].replace(element, "")}
    return chconfig.PodFiles(files, pod.config_file, pod.data_dir, pod.env_names)


def test_distributed_insert_and_read_on_the_local_shard_run_with_the_users_own_rights(
    tmp_path: Path,
) -> None:
    """On a cluster host, a Distributed insert writes the rows of its own shard straight
    into ``events_local`` as the writer (so the writer needs that grant, and without it
    the insert is refused), and a Distributed read of the local shard reads it as the
    reader. The other shards' rows wait in the queue, sent as the remote_servers user."""
    t = Tenant("tenant-sharded", tmp_path)
    t.create_schema()  # one seed row in events_local
    shards = t.model.clickhouse.shards
    batch = 30
    (local_rows,) = t.run(
        "admin",
        [
            f"SELECT countIf(cityHash64(concat('u', toString(number))) % {shards} = 0)"
            f" FROM numbers(100, {batch})"
        ],
    )
    expected = local_rows.rows[0][0]
    assert 0 < expected < batch  # some rows are this shard's, some are not

    local = _q(t.db, schema.EVENTS_LOCAL)
    distributed = f"SELECT count() FROM {_q(t.db, schema.EVENTS)}"
    results = t.run(
        "writer",
        [
            t.insert(schema.EVENTS, 100, "insert_deduplication_token = 'd-1'", rows=batch),
            f"SELECT count() FROM {local}",
        ],
    )
    assert results[0].ok, results[0].error
    assert results[1].error_name() == "ACCESS_DENIED"  # and still may not read
    after = t.run(
        "reader",
        [
            f"SELECT count() FROM {local}",
            f"{distributed} SETTINGS skip_unavailable_shards = 1",
        ],
    )
    assert [r.rows for r in after] == [[[1 + expected]], [[1 + expected]]]

    # the second grant is what lets the writer write through the Distributed table
    t.pod = _without(t.pod, f"GRANT INSERT ON {local}")
    (refused,) = t.run("writer", [t.insert(schema.EVENTS, 200, rows=batch)])
    assert refused.error_name() == "ACCESS_DENIED", refused
    assert "events_local" in refused.error

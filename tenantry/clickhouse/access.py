"""Access-control SQL for a tenant: roles, users, settings profiles, quotas, row policy.

Each tenant gets two users: a writer (the ingestion service: INSERT only) and a
reader (dashboards and the control plane: SELECT only, with limits). Rights live
on roles, limits on settings profiles and quotas, so a user is only a password
plus its role.

chDB cannot run any of this (its access storage is read-only), so these
functions are tested by what they generate, parsed by the real engine's
`formatQuery` in the integration tests, and executed wherever a real server is
reachable. Idempotency is by construction:

- roles and users: `CREATE ... IF NOT EXISTS`, then ALTER/GRANT statements that
  converge (password, default role), so re-running keeps grants in place;
- settings profiles, quotas, row policies: `CREATE ... OR REPLACE`, so a change
  of limits or retention is applied by running the same statements again.

Passwords never appear in SQL: users are created with `sha256_hash`, the hex
SHA-256 of a password the operator generates (long and random, so unsalted
hashing is not the weak point).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from tenantry.clickhouse.client import quote_identifier
from tenantry.clickhouse.schema import EVENTS, EVENTS_LOCAL, TenantSchema

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class AccessNames:
    """Names of the tenant's access entities, derived from its database name."""

    writer_user: str
    reader_user: str
    writer_role: str
    reader_role: str
    writer_profile: str
    reader_profile: str
    writer_quota: str
    reader_quota: str
    reader_policy: str


@dataclass(frozen=True)
class ReaderLimits:
    """Per-query limits (settings profile) and hourly quota of the reader.

    The limits are READONLY constraints: a dashboard query cannot raise them
    with SETTINGS, while `readonly = 2` still lets clients set harmless ones.
    """

    max_execution_time_s: int = 30
    max_memory_usage_bytes: int = 2 * 1024**3
    max_rows_to_read: int = 2_000_000_000
    max_result_rows: int = 100_000
    queries_per_hour: int = 20_000
    execution_time_per_hour_s: int = 3_600


@dataclass(frozen=True)
class WriterLimits:
    """Per-query limits and per-minute quota of the ingestion writer."""

    max_execution_time_s: int = 120
    max_memory_usage_bytes: int = 4 * 1024**3
    inserts_per_minute: int = 6_000


def names(schema: TenantSchema) -> AccessNames:
    db = schema.database
    return AccessNames(
        writer_user=f"{db}_writer",
        reader_user=f"{db}_reader",
        writer_role=f"{db}_writer_role",
        reader_role=f"{db}_reader_role",
        writer_profile=f"{db}_writer_profile",
        reader_profile=f"{db}_reader_profile",
        writer_quota=f"{db}_writer_quota",
        reader_quota=f"{db}_reader_quota",
        reader_policy=f"{db}_reader_retention",
    )


def password_sha256(password: str) -> str:
    """The hex digest `IDENTIFIED WITH sha256_hash BY` expects."""
    return hashlib.sha256(password.encode()).hexdigest()


def _on_cluster(schema: TenantSchema) -> str:
    if schema.clustered and schema.cluster is not None:
        return f" ON CLUSTER {quote_identifier(schema.cluster)}"
    return ""


def _q(name: str) -> str:
    return quote_identifier(name)


def _table(schema: TenantSchema, table: str) -> str:
    return f"{_q(schema.database)}.{_q(table)}"


def _user_statements(
    schema: TenantSchema, *, user: str, role: str, password_hash: str
) -> list[str]:
    if not _SHA256_HEX.match(password_hash):
        raise ValueError("password hash must be 64 lowercase hex characters (sha256)")
    on = _on_cluster(schema)
    ident = f"IDENTIFIED WITH sha256_hash BY '{password_hash}'"
    return [
        f"CREATE USER IF NOT EXISTS {_q(user)}{on} {ident} DEFAULT DATABASE {_q(schema.database)}",
        f"ALTER USER {_q(user)}{on} {ident}",
        f"GRANT{on} {_q(role)} TO {_q(user)}",
        f"ALTER USER {_q(user)}{on} DEFAULT ROLE {_q(role)}",
    ]


def role_statements(schema: TenantSchema) -> list[str]:
    """The two roles and their grants: INSERT for the writer, SELECT for the reader.

    On a cluster the writer also gets INSERT on `events_local`, which a
    Distributed insert writes through on the local shard.
    """
    n = names(schema)
    on = _on_cluster(schema)
    insert_tables = [EVENTS, EVENTS_LOCAL] if schema.clustered else [EVENTS]
    statements = [
        f"CREATE ROLE IF NOT EXISTS {_q(n.writer_role)}{on}",
        f"CREATE ROLE IF NOT EXISTS {_q(n.reader_role)}{on}",
    ]
    statements += [
        f"GRANT{on} INSERT ON {_table(schema, t)} TO {_q(n.writer_role)}" for t in insert_tables
    ]
    statements.append(f"GRANT{on} SELECT ON {_q(schema.database)}.* TO {_q(n.reader_role)}")
    return statements


def profile_statements(
    schema: TenantSchema, *, reader: ReaderLimits, writer: WriterLimits
) -> list[str]:
    n = names(schema)
    on = _on_cluster(schema)
    return [
        f"CREATE SETTINGS PROFILE OR REPLACE {_q(n.reader_profile)}{on} SETTINGS "
        "readonly = 2, "
        f"max_execution_time = {int(reader.max_execution_time_s)} READONLY, "
        f"max_memory_usage = {int(reader.max_memory_usage_bytes)} READONLY, "
        f"max_rows_to_read = {int(reader.max_rows_to_read)} READONLY, "
        f"max_result_rows = {int(reader.max_result_rows)} READONLY, "
        "result_overflow_mode = 'throw' READONLY "
        f"TO {_q(n.reader_role)}",
        f"CREATE SETTINGS PROFILE OR REPLACE {_q(n.writer_profile)}{on} SETTINGS "
        f"max_execution_time = {int(writer.max_execution_time_s)} READONLY, "
        f"max_memory_usage = {int(writer.max_memory_usage_bytes)} READONLY "
        f"TO {_q(n.writer_role)}",
    ]


def quota_statements(
    schema: TenantSchema, *, reader: ReaderLimits, writer: WriterLimits
) -> list[str]:
    """Quotas keyed by user name, so each user has its own counters."""
    n = names(schema)
    on = _on_cluster(schema)
    return [
        f"CREATE QUOTA OR REPLACE {_q(n.reader_quota)}{on} KEYED BY user_name "
        f"FOR INTERVAL 1 hour MAX queries = {int(reader.queries_per_hour)}, "
        f"execution_time = {int(reader.execution_time_per_hour_s)} "
        f"TO {_q(n.reader_role)}",
        f"CREATE QUOTA OR REPLACE {_q(n.writer_quota)}{on} KEYED BY user_name "
        f"FOR INTERVAL 1 minute MAX queries = {int(writer.inserts_per_minute)} "
        f"TO {_q(n.writer_role)}",
    ]


def row_policy_statement(schema: TenantSchema) -> str:
    """The reader sees only rows inside the retention period.

    TTL deletes expired rows when parts merge, which can be hours after they
    expire; this policy makes retention exact for everything the reader
    queries. It is replaced (OR REPLACE) when the retention changes.
    """
    n = names(schema)
    return (
        f"CREATE ROW POLICY OR REPLACE {_q(n.reader_policy)}{_on_cluster(schema)} "
        f"ON {_table(schema, EVENTS)} AS PERMISSIVE FOR SELECT "
        f"USING timestamp >= now64(3) - INTERVAL {int(schema.retention_days)} DAY "
        f"TO {_q(n.reader_role)}"
    )


def access_statements(
    schema: TenantSchema,
    *,
    writer_password_sha256: str,
    reader_password_sha256: str,
    reader_limits: ReaderLimits | None = None,
    writer_limits: WriterLimits | None = None,
) -> list[str]:
    """All access-control SQL for the tenant, in the order it must run.

    Roles first (grants need them), then profiles and quotas (assigned to the
    roles), the row policy, and the users last (granted their role).
    """
    reader = reader_limits or ReaderLimits()
    writer = writer_limits or WriterLimits()
    n = names(schema)
    statements = role_statements(schema)
    statements += profile_statements(schema, reader=reader, writer=writer)
    statements += quota_statements(schema, reader=reader, writer=writer)
    statements.append(row_policy_statement(schema))
    statements += _user_statements(
        schema, user=n.writer_user, role=n.writer_role, password_hash=writer_password_sha256
    )
    statements += _user_statements(
        schema, user=n.reader_user, role=n.reader_role, password_hash=reader_password_sha256
    )
    return statements

"""Access-control SQL as text: roles, grants, profiles, quotas, row policy, users."""

from __future__ import annotations

import hashlib

import pytest

from tenantry.clickhouse import access
from tenantry.clickhouse.schema import TenantSchema

SINGLE = TenantSchema(database="acme", retention_days=30)
CLUSTER = TenantSchema(database="acme", retention_days=30, cluster="tenant", shards=2)
WRITER_HASH = access.password_sha256("writer-secret")
READER_HASH = access.password_sha256("reader-secret")


def _all(tenant: TenantSchema) -> list[str]:
    return access.access_statements(
        tenant, writer_password_sha256=WRITER_HASH, reader_password_sha256=READER_HASH
    )


def test_password_hash_is_hex_sha256() -> None:
    assert hashlib.sha256(b"writer-secret").hexdigest() == WRITER_HASH


def test_names_derive_from_database() -> None:
    n = access.names(SINGLE)
    assert (n.writer_user, n.reader_user) == ("acme_writer", "acme_reader")
    assert (n.writer_role, n.reader_role) == ("acme_writer_role", "acme_reader_role")


def test_single_node_statements_golden() -> None:
    assert _all(SINGLE) == [
        "CREATE ROLE IF NOT EXISTS `acme_writer_role`",
        "CREATE ROLE IF NOT EXISTS `acme_reader_role`",
        "GRANT INSERT ON `acme`.`events` TO `acme_writer_role`",
        "GRANT SELECT ON `acme`.* TO `acme_reader_role`",
        "CREATE SETTINGS PROFILE OR REPLACE `acme_reader_profile` SETTINGS readonly = 2, "
        "max_execution_time = 30 READONLY, max_memory_usage = 2147483648 READONLY, "
        "max_rows_to_read = 2000000000 READONLY, max_result_rows = 100000 READONLY, "
        "result_overflow_mode = 'throw' READONLY TO `acme_reader_role`",
        "CREATE SETTINGS PROFILE OR REPLACE `acme_writer_profile` SETTINGS "
        "max_execution_time = 120 READONLY, max_memory_usage = 4294967296 READONLY "
        "TO `acme_writer_role`",
        "CREATE QUOTA OR REPLACE `acme_reader_quota` KEYED BY user_name FOR INTERVAL 1 hour "
        "MAX queries = 20000, execution_time = 3600 TO `acme_reader_role`",
        "CREATE QUOTA OR REPLACE `acme_writer_quota` KEYED BY user_name FOR INTERVAL 1 minute "
        "MAX queries = 6000 TO `acme_writer_role`",
        "CREATE ROW POLICY OR REPLACE `acme_reader_retention` ON `acme`.`events` AS PERMISSIVE "
        "FOR SELECT USING timestamp >= now64(3) - INTERVAL 30 DAY TO `acme_reader_role`",
        f"CREATE USER IF NOT EXISTS `acme_writer` IDENTIFIED WITH sha256_hash BY '{WRITER_HASH}' "
        "DEFAULT DATABASE `acme`",
        f"ALTER USER `acme_writer` IDENTIFIED WITH sha256_hash BY '{WRITER_HASH}'",
        "GRANT `acme_writer_role` TO `acme_writer`",
        "ALTER USER `acme_writer` DEFAULT ROLE `acme_writer_role`",
        f"CREATE USER IF NOT EXISTS `acme_reader` IDENTIFIED WITH sha256_hash BY '{READER_HASH}' "
        "DEFAULT DATABASE `acme`",
        f"ALTER USER `acme_reader` IDENTIFIED WITH sha256_hash BY '{READER_HASH}'",
        "GRANT `acme_reader_role` TO `acme_reader`",
        "ALTER USER `acme_reader` DEFAULT ROLE `acme_reader_role`",
    ]


def test_cluster_statements_all_run_on_cluster_and_writer_reaches_local_table() -> None:
    statements = _all(CLUSTER)
    assert all("ON CLUSTER `tenant`" in s for s in statements)
    assert "GRANT ON CLUSTER `tenant` INSERT ON `acme`.`events_local` TO `acme_writer_role`" in (
        statements
    )


def test_reader_never_gets_write_rights_and_writer_never_reads() -> None:
    grants = [s for s in _all(CLUSTER) if s.startswith("GRANT") and " ON `acme`." in s]
    assert len(grants) == 3
    for grant in grants:
        if "INSERT" in grant:
            assert grant.endswith("TO `acme_writer_role`")
        else:
            assert grant.endswith("TO `acme_reader_role`")


def test_passwords_only_appear_hashed() -> None:
    text = "\n".join(_all(SINGLE))
    assert "writer-secret" not in text
    assert "reader-secret" not in text


def test_limits_and_retention_flow_into_sql() -> None:
    reader = access.ReaderLimits(max_execution_time_s=5, queries_per_hour=10)
    statements = access.access_statements(
        TenantSchema(database="acme", retention_days=400),
        writer_password_sha256=WRITER_HASH,
        reader_password_sha256=READER_HASH,
        reader_limits=reader,
    )
    text = "\n".join(statements)
    assert "max_execution_time = 5 READONLY" in text
    assert "MAX queries = 10," in text
    assert "INTERVAL 400 DAY" in text


def test_creation_order_roles_before_grants_before_users() -> None:
    statements = _all(SINGLE)
    first_user = next(i for i, s in enumerate(statements) if s.startswith("CREATE USER"))
    last_role = max(i for i, s in enumerate(statements) if s.startswith("CREATE ROLE"))
    policy = next(i for i, s in enumerate(statements) if "ROW POLICY" in s)
    assert last_role < policy < first_user


@pytest.mark.parametrize("bad", ["", "abc", "G" * 64, WRITER_HASH.upper(), "writer-secret"])
def test_plain_passwords_or_bad_hashes_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="sha256"):
        access.access_statements(
            SINGLE, writer_password_sha256=bad, reader_password_sha256=READER_HASH
        )

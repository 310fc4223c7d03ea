"""Backup bucket lifecycle against a real S3 server (SeaweedFS)."""

from __future__ import annotations

import pytest
from tenantry_operator.s3 import Buckets, S3Config, S3Error

from tests.support.seaweed import S3Server


def _buckets(s3: S3Server, secret: str | None = None) -> Buckets:
    return Buckets(
        S3Config(s3.endpoint, s3.access_key_id, secret or s3.secret_access_key), timeout=2
    )


async def test_ensure_creates_once_and_tags(s3_server: S3Server) -> None:
    b = _buckets(s3_server)
    assert await b.ensure("bk-acme", tenant="acme") is True
    assert await b.ensure("bk-acme", tenant="acme") is False
    tags = s3_server.client().get_bucket_tagging(Bucket="bk-acme")["TagSet"]
    assert {"Key": "tenantry.io/tenant", "Value": "acme"} in tags


async def test_delete_removes_own_bucket_with_its_backups(s3_server: S3Server) -> None:
    b = _buckets(s3_server)
    await b.ensure("bk-own", tenant="own")
    raw = s3_server.client()
    for i in range(3):
        raw.put_object(Bucket="bk-own", Key=f"prod/own/backup-{i}", Body=b"x")
    assert await b.delete_tenant_data("bk-own", prefix="prod/", tenant="own") is True
    assert await b.exists("bk-own") is False


async def test_shared_bucket_keeps_other_tenants_data(s3_server: S3Server) -> None:
    b = _buckets(s3_server)
    await b.ensure("bk-shared", tenant="first")
    raw = s3_server.client()
    raw.put_object(Bucket="bk-shared", Key="first/b1", Body=b"x")
    raw.put_object(Bucket="bk-shared", Key="second/b1", Body=b"y")
    # "second" does not own the bucket: only its objects go.
    assert await b.delete_tenant_data("bk-shared", prefix="", tenant="second") is False
    keys = [o["Key"] for o in raw.list_objects_v2(Bucket="bk-shared")["Contents"]]
    assert keys == ["first/b1"]
    # The owner's bucket is not empty of others' data? Now it is only its own: deleted.
    assert await b.delete_tenant_data("bk-shared", prefix="", tenant="first") is True


async def test_wrong_secret_is_refused_without_leaking_it(s3_server: S3Server) -> None:
    b = _buckets(s3_server, secret="not-the-secret")
    with pytest.raises(S3Error) as err:
        await b.ensure("bk-denied", tenant="x")
    assert "not-the-secret" not in str(err.value)


async def test_unreachable_s3_fails_fast() -> None:
    from tenantry_dev.services import free_port

    b = Buckets(S3Config(f"http://127.0.0.1:{free_port()}", "a", "b"), timeout=1)
    with pytest.raises(S3Error, match="unreachable"):
        await b.ensure("bk", tenant="x")

"""Backup buckets on S3 (boto3, path-style, so SeaweedFS/MinIO-style servers work too).

A bucket may be shared by several tenants (each writes under ``<prefix><tenant>/``), so
deleting a tenant removes only its own objects, and removes the bucket itself only when
the operator created it for that tenant (bucket tag ``tenantry.io/tenant``) and it is
then empty. Calls are bounded (timeouts, few retries) so an unreachable S3 can never
hang a reconcile or a deletion.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

# boto3 is imported where a bucket is first touched, not with the operator: it costs
# about 25 MiB of memory, which an operator without backups configured never needs.

TAG = "tenantry.io/tenant"


class S3Error(Exception):
    """S3 could not be reached or refused; the message is safe to show (no secrets)."""


@dataclass(frozen=True)
class S3Config:
    endpoint: str
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"

    def __repr__(self) -> str:  # never print the secret
        return f"S3Config(endpoint={self.endpoint!r}, access_key_id={self.access_key_id!r})"


def tenant_prefix(prefix: str, tenant: str) -> str:
    return f"{prefix}{tenant}/"


def client(config: S3Config, *, timeout: float = 5.0) -> Any:
    """A boto3 S3 client: path-style, bounded timeouts and retries."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=config.endpoint,
        region_name=config.region,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        config=Config(
            s3={"addressing_style": "path"},
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 2},
        ),
    )


class Buckets:
    def __init__(self, config: S3Config, *, timeout: float = 5.0) -> None:
        self._client: Any = client(config, timeout=timeout)

    async def ensure(self, bucket: str, *, tenant: str) -> bool:
        """Create the bucket (tagged with the tenant) unless it exists; True if created."""
        return await asyncio.to_thread(self._ensure, bucket, tenant)

    async def delete_tenant_data(self, bucket: str, *, prefix: str, tenant: str) -> bool:
        """Delete the tenant's objects; delete the bucket if it is the tenant's own and
        empty. True when the bucket itself was deleted."""
        return await asyncio.to_thread(self._delete, bucket, prefix, tenant)

    async def exists(self, bucket: str) -> bool:
        return await asyncio.to_thread(self._exists, bucket)

    # -- blocking parts ------------------------------------------------------------------
    def _exists(self, bucket: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.head_bucket(Bucket=bucket)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket", "NotFound"):
                return False
            raise S3Error(f"head_bucket {bucket}: {code(err)}") from err
        except BotoCoreError as err:
            raise S3Error(f"S3 unreachable: {type(err).__name__}") from err
        return True

    def _ensure(self, bucket: str, tenant: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        if self._exists(bucket):
            return False
        try:
            self._client.create_bucket(Bucket=bucket)
            self._client.put_bucket_tagging(
                Bucket=bucket, Tagging={"TagSet": [{"Key": TAG, "Value": tenant}]}
            )
        except ClientError as err:
            if code(err) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                return False
            raise S3Error(f"create_bucket {bucket}: {code(err)}") from err
        except BotoCoreError as err:
            raise S3Error(f"S3 unreachable: {type(err).__name__}") from err
        return True

    def _owner(self, bucket: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            tags = self._client.get_bucket_tagging(Bucket=bucket).get("TagSet", [])
        except ClientError:
            return None
        return next((t["Value"] for t in tags if t.get("Key") == TAG), None)

    def _delete(self, bucket: str, prefix: str, tenant: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if not self._exists(bucket):
                return False
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=tenant_prefix(prefix, tenant)
            )
            for page in pages:
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    self._client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
            if self._owner(bucket) != tenant:
                return False
            left = self._client.list_objects_v2(Bucket=bucket, MaxKeys=1)
            if left.get("KeyCount", 0):
                return False
            self._client.delete_bucket(Bucket=bucket)
        except ClientError as err:
            raise S3Error(f"deleting backups in {bucket}: {code(err)}") from err
        except BotoCoreError as err:
            raise S3Error(f"S3 unreachable: {type(err).__name__}") from err
        return True


def code(err: ClientError) -> str:
    """S3's error code of a refused call (``NoSuchBucket``, ``AccessDenied``, ...)."""
    return str(err.response.get("Error", {}).get("Code", "error"))

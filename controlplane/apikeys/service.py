"""Rules of API keys: format, hashing, expiry and revocation.

A key reads ``tnt_<prefix>_<secret>``: the 8-character prefix identifies it in lists
and logs, the secret carries 256 bits, and only SHA-256 of the whole key is stored (a
slow hash adds nothing for random secrets and would cost every ingestion request).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from controlplane.apikeys import repository
from controlplane.apikeys.repository import KeyRow
from controlplane.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from controlplane.audit import service as audit
from controlplane.context import OrgAccess, RequestInfo
from controlplane.errors import NotFound
from controlplane.tenants.repository import slug_name
from tenantry import contract
from tenantry.internal_api import Introspection


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _out(row: KeyRow) -> ApiKeyOut:
    return ApiKeyOut(
        id=row.id,
        tenant=row.tenant,
        name=row.name,
        prefix=row.prefix,
        scopes=row.scopes,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


async def create(
    conn: asyncpg.Connection,
    access: OrgAccess,
    *,
    tenant: str,
    body: ApiKeyCreate,
    info: RequestInfo,
) -> ApiKeyCreated:
    key, prefix = contract.new_api_key()
    expires = (
        datetime.now(UTC) + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    )
    row = await repository.insert(
        conn,
        org_id=access.org.id,
        tenant=tenant,
        name=body.name,
        prefix=prefix,
        key_hash=key_hash(key),
        scopes=sorted({s.value for s in body.scopes}),
        created_by=access.principal.user_id,
        expires_at=expires,
    )
    await audit.record_as(
        conn,
        access,
        action="apikey.create",
        target=f"tenant/{tenant}/apikey/{prefix}",
        info=info,
    )
    return ApiKeyCreated(**_out(row).model_dump(), key=key)


async def list_keys(conn: asyncpg.Connection, access: OrgAccess, tenant: str) -> list[ApiKeyOut]:
    return [_out(r) for r in await repository.of_tenant(conn, access.org.id, tenant)]


async def revoke(
    conn: asyncpg.Connection,
    access: OrgAccess,
    *,
    tenant: str,
    key_id: uuid.UUID,
    info: RequestInfo,
) -> ApiKeyOut:
    row = await repository.revoke(conn, org_id=access.org.id, tenant=tenant, key_id=key_id)
    if row is None:
        raise NotFound("API key not found")
    await audit.record_as(
        conn,
        access,
        action="apikey.revoke",
        target=f"tenant/{tenant}/apikey/{row.prefix}",
        info=info,
    )
    return _out(row)


@dataclass(frozen=True)
class KeyIdentity:
    org_id: uuid.UUID
    tenant: str
    scopes: list[str]
    prefix: str


async def authenticate(conn: asyncpg.Connection, key: str) -> KeyIdentity | None:
    """What a presented key may do, or None (unknown, revoked or expired)."""
    if not key.startswith("tnt_") or len(key) > 200:
        return None
    row = await repository.by_hash(conn, key_hash(key))
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= datetime.now(UTC):
        return None
    return KeyIdentity(row.org_id, row.tenant, row.scopes, row.prefix)


_INACTIVE = Introspection(active=False)


async def introspect(conn: asyncpg.Connection, key: str) -> Introspection:
    """What the ingestion service may know of a presented key.

    Unknown, revoked and expired keys all get the same ``{"active": false}``: the
    caller must not learn which, and a guesser learns nothing. Malformed keys never
    reach the database. Not audited: this runs for every ingestion cache miss.
    """
    if not key.startswith("tnt_") or len(key) > 200:
        return _INACTIVE
    found = await repository.introspect(conn, key_hash(key))
    if found is None:
        return _INACTIVE
    row, slug = found
    if row.revoked_at is not None:
        return _INACTIVE
    if row.expires_at is not None and row.expires_at <= datetime.now(UTC):
        return _INACTIVE
    return Introspection(
        active=True,
        tenant=slug_name(slug, row.tenant),
        org_id=str(row.org_id),
        scopes=row.scopes,
        expires_at=row.expires_at,
    )

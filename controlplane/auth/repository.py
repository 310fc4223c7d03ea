"""Storage of the auth domain: signing keys and OAuth clients in PostgreSQL, refresh-token
families and authorization codes in Redis.

Refresh tokens are never stored, only their SHA-256. A used token stays (marked used)
until it expires, which is what makes reuse detectable: presenting it again revokes
the whole family, including the access tokens of that session (they carry its id).

Each user's families are also listed in the set ``user-fams:<user id>`` (kept as long as
the newest family), so that "end every session" can revoke them all at once
(``SessionStore.revoke_all``); a listed family that has expired meanwhile is harmless.

Revoking a family deletes ``fam:<family>`` and publishes the family on
``revocation.CHANNEL`` in one step, so that every process's ``ActiveFamilies`` cache
(``auth/revocation.py``) forgets it; ``family_active`` answers from that cache when the
store has one, else asks Redis every time.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
from redis.asyncio import Redis

from controlplane.auth.crypto import KeyMaterial, digest
from controlplane.auth.revocation import CHANNEL, ActiveFamilies


@dataclass(frozen=True)
class KeyRow:
    kid: str
    algorithm: str
    private_pem: str
    public_jwk: dict[str, Any]
    active: bool


async def lock_keys(conn: asyncpg.Connection) -> None:
    await conn.execute("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")


async def verifying_keys(conn: asyncpg.Connection) -> list[KeyRow]:
    rows = await conn.fetch(
        "SELECT kid, algorithm, private_pem, public_jwk, active FROM signing_keys "
        "WHERE retired_at IS NULL ORDER BY created_at"
    )
    return [
        KeyRow(r["kid"], r["algorithm"], r["private_pem"], json.loads(r["public_jwk"]), r["active"])
        for r in rows
    ]


async def has_active_key(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM signing_keys WHERE active)"))


async def deactivate_keys(conn: asyncpg.Connection) -> None:
    await conn.execute("UPDATE signing_keys SET active = false WHERE active")


async def insert_key(conn: asyncpg.Connection, key: KeyMaterial, *, active: bool) -> None:
    await conn.execute(
        "INSERT INTO signing_keys (kid, algorithm, private_pem, public_jwk, active) "
        "VALUES ($1, $2, $3, $4::jsonb, $5)",
        key.kid,
        key.algorithm,
        key.private_pem,
        json.dumps(key.public_jwk),
        active,
    )


async def retire_key(conn: asyncpg.Connection, kid: str) -> bool:
    status = await conn.execute(
        "UPDATE signing_keys SET retired_at = now() "
        "WHERE kid = $1 AND NOT active AND retired_at IS NULL",
        kid,
    )
    return str(status).endswith(" 1")


@dataclass(frozen=True)
class ClientRow:
    client_id: str
    name: str
    redirect_uris: list[str]


async def client(conn: asyncpg.Connection, client_id: str) -> ClientRow | None:
    r = await conn.fetchrow(
        "SELECT client_id, name, redirect_uris FROM oauth_clients WHERE client_id = $1", client_id
    )
    return ClientRow(r["client_id"], r["name"], list(r["redirect_uris"])) if r else None


async def upsert_client(
    conn: asyncpg.Connection, *, client_id: str, name: str, redirect_uris: list[str]
) -> None:
    await conn.execute(
        "INSERT INTO oauth_clients (client_id, name, redirect_uris) VALUES ($1, $2, $3) "
        "ON CONFLICT (client_id) DO UPDATE SET name = $2, redirect_uris = $3",
        client_id,
        name,
        redirect_uris,
    )


# KEYS[1] = rt:<digest>, ARGV[1] = the revocation channel. Marks the token used and says
# what it belonged to; a token already used revokes its family (reuse detection) in the
# same atomic step, announcing it like ``SessionStore.revoke_family``.
_USE_REFRESH = """
local fam = redis.call('HGET', KEYS[1], 'fam')
if not fam then return {'missing'} end
local user = redis.call('HGET', KEYS[1], 'user')
local client = redis.call('HGET', KEYS[1], 'client')
if redis.call('HGET', KEYS[1], 'used') == '1' then
  redis.call('DEL', 'fam:' .. fam)
  redis.call('PUBLISH', ARGV[1], fam)
  return {'reuse', fam, user, client}
end
if redis.call('EXISTS', 'fam:' .. fam) == 0 then return {'revoked', fam, user, client} end
redis.call('HSET', KEYS[1], 'used', '1')
return {'ok', fam, user, client}
"""


# KEYS[1] = user-fams:<user>, ARGV[1] = the revocation channel. Every family of the user
# deleted and announced, and the list with them, in one atomic step: a family created
# after it is a new sign-in. Returns the families that were still active.
_REVOKE_ALL = """
local ended = {}
for _, fam in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('DEL', 'fam:' .. fam) == 1 then table.insert(ended, fam) end
  redis.call('PUBLISH', ARGV[1], fam)
end
redis.call('DEL', KEYS[1])
return ended
"""


@dataclass(frozen=True)
class RefreshUse:
    outcome: str  # ok | reuse | revoked | missing
    family: str = ""
    user_id: str = ""
    client_id: str = ""


@dataclass(frozen=True)
class AuthCode:
    user_id: str
    client_id: str
    redirect_uri: str
    challenge: str


class SessionStore:
    """Refresh-token families (one per sign-in) and single-use authorization codes."""

    def __init__(
        self, redis: Redis, *, ttl: int, code_ttl: int, cache: ActiveFamilies | None = None
    ) -> None:
        self._redis = redis
        self._ttl = ttl
        self._code_ttl = code_ttl
        self._cache = cache

    async def new_family(self, user_id: uuid.UUID) -> str:
        family = uuid.uuid4().hex
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(f"fam:{family}", str(user_id), ex=self._ttl)
        pipe.sadd(_user_families(str(user_id)), family)
        pipe.expire(_user_families(str(user_id)), self._ttl)
        await pipe.execute()
        return family

    async def issue(self, *, family: str, user_id: str, client_id: str) -> str:
        token = "rt_" + uuid.uuid4().hex + uuid.uuid4().hex
        key = f"rt:{digest(token)}"
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"fam": family, "user": user_id, "client": client_id, "used": "0"})
        pipe.expire(key, self._ttl)
        pipe.expire(f"fam:{family}", self._ttl)
        pipe.expire(_user_families(user_id), self._ttl)
        await pipe.execute()
        return token

    async def use(self, token: str) -> RefreshUse:
        raw = await self._redis.eval(_USE_REFRESH, 1, f"rt:{digest(token)}", CHANNEL)
        use = RefreshUse(*[p.decode() if isinstance(p, bytes) else str(p) for p in raw])
        if use.outcome == "reuse" and self._cache is not None:
            self._cache.invalidate(use.family)
        return use

    async def owner(self, token: str) -> str | None:
        """The user id a refresh token was issued to, used or not; None for a token this
        server never issued (or one past its lifetime). Reads only: nothing is marked."""
        raw = await self._redis.hget(f"rt:{digest(token)}", "user")
        return raw.decode() if isinstance(raw, bytes) else raw

    async def family_active(self, family: str, *, stale_ok: bool = False) -> bool:
        """Whether the family is active; ``stale_ok`` (reads): when Redis cannot be
        reached, as the cache last confirmed it within its ``max_age`` (``outages.py``)."""
        if self._cache is None:
            return await self._family_exists(family)
        return await self._cache.is_active(
            family, lambda: self._family_exists(family), stale_ok=stale_ok
        )

    async def _family_exists(self, family: str) -> bool:
        return bool(await self._redis.exists(f"fam:{family}"))

    async def revoke_family(self, family: str) -> None:
        """Delete the family and announce it (DEL first): other processes forget it
        within milliseconds, this one at once."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(f"fam:{family}")
        pipe.publish(CHANNEL, family)
        try:
            await pipe.execute()
        finally:  # even on an error: the DEL may have happened
            if self._cache is not None:
                self._cache.invalidate(family)

    async def revoke_all(self, user_id: uuid.UUID) -> list[str]:
        """Revoke every family of the user (each announced like ``revoke_family``);
        the families that were active."""
        try:
            raw = await self._redis.eval(_REVOKE_ALL, 1, _user_families(str(user_id)), CHANNEL)
        except BaseException:  # some may be deleted: this process forgets every family
            if self._cache is not None:
                self._cache.invalidate(None)
            raise
        ended = [f.decode() if isinstance(f, bytes) else str(f) for f in raw]
        if self._cache is not None:
            for family in ended:
                self._cache.invalidate(family)
        return ended

    async def store_code(self, code: str, value: AuthCode) -> None:
        await self._redis.set(f"code:{digest(code)}", json.dumps(value.__dict__), ex=self._code_ttl)

    async def take_code(self, code: str) -> AuthCode | None:
        """The code's grant, removed atomically: a code works once."""
        raw = await self._redis.getdel(f"code:{digest(code)}")
        return AuthCode(**json.loads(raw)) if raw else None


def _user_families(user_id: str) -> str:
    return f"user-fams:{user_id}"

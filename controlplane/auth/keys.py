"""The signing-key ring: which key signs, which keys verify, and the JWKS.

Keys live in PostgreSQL so every replica agrees. Rotation inserts a new active key;
the previous one keeps verifying (it stays in the JWKS) until it is retired, so nobody
is logged out by a rotation. Each process reloads the ring every
``key_refresh_seconds`` and immediately when it meets an unknown ``kid``. While
PostgreSQL cannot be reached the ring loaded last keeps verifying, for at most
``outages.KEY_STALENESS_SECONDS`` past its due reload (retried once a second
meanwhile); a token with a ``kid`` it does not know is then a 503, since only the
database could say whether it is valid. One request reloads the ring at a time; the
others meanwhile verify with the ring as it is. A due reload with a ring to fall back on
waits briefly for a pooled connection, or tries again a second later: it can run
inside a request that holds one already (signing at sign-in), and a long wait there
could hold the pool up.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import jwt

from controlplane import db, outages
from controlplane.auth import crypto, repository
from controlplane.errors import Unauthenticated
from controlplane.settings import Settings

_VERIFIED_MAX = 10_000
_RETRY_SECONDS = 1.0  # between reload attempts while PostgreSQL is unreachable
# A due reload that has a ring to fall back on waits this long at most for a pooled
# connection. It runs inside requests that may hold a connection (signing at login)
# and locks: waiting the pool's full bound there could starve the pool for that long.
_RELOAD_ACQUIRE_SECONDS = 0.5
log = logging.getLogger("tenantry.controlplane.keys")


@dataclass(frozen=True)
class Key:
    kid: str
    algorithm: str
    private: Any
    public_jwk: dict[str, Any]
    active: bool

    @property
    def public(self) -> Any:
        return self.private.public_key()


@dataclass(frozen=True)
class Claims:
    sub: uuid.UUID
    sid: str
    jti: str
    client_id: str


class KeyRing:
    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings
        secret = settings.signing_key_secret
        self._secret = secret.get_secret_value() if secret is not None else None
        self._keys: dict[str, Key] = {}
        self._loaded = 0.0
        self._retry_at = 0.0  # no reload attempt before (after one met an outage)
        self._reloading = False  # a reload is in flight
        self._last_forced = 0.0
        # Tokens already verified, until they expire: a client sends the same token for
        # an hour, and a signature check costs more than the rest of a read request.
        # Cleared whenever the set of verifying keys changes (retirement takes effect).
        self._verified: OrderedDict[str, tuple[Claims, float]] = OrderedDict()

    async def load(self, *, acquire_timeout: float = db.ACQUIRE_TIMEOUT_SECONDS) -> None:
        async with db.transaction(self._pool, acquire_timeout=acquire_timeout) as conn:
            rows = await repository.verifying_keys(conn)
        keys = {
            r.kid: Key(
                r.kid,
                r.algorithm,
                crypto.load_private(crypto.unseal(r.private_pem, self._secret)),
                r.public_jwk,
                r.active,
            )
            for r in rows
        }
        if keys.keys() != self._keys.keys():
            self._verified.clear()
        self._keys = keys
        self._loaded = time.monotonic()

    def _new_key(self) -> crypto.KeyMaterial:
        material = crypto.generate_key(self._settings.signing_algorithm)
        return replace(material, private_pem=crypto.seal(material.private_pem, self._secret))

    async def ensure_active(self) -> None:
        """Create the first key when there is none (first start)."""
        async with db.transaction(self._pool) as conn:
            await repository.lock_keys(conn)
            if not await repository.has_active_key(conn):
                await repository.insert_key(conn, self._new_key(), active=True)
        await self.load()

    async def refresh(self) -> None:
        """Reload the ring when it is older than ``key_refresh_seconds``; while
        PostgreSQL is unreachable, keep the loaded ring for a bounded time (above)."""
        now = time.monotonic()
        due = self._loaded + self._settings.key_refresh_seconds
        if now <= due:
            return
        within_grace = bool(self._keys) and now <= due + outages.KEY_STALENESS_SECONDS
        # One reload at a time: the requests meanwhile verify with the ring they have
        # (a server that stopped answering would otherwise hold each of them).
        if within_grace and (self._reloading or now < self._retry_at):
            return
        self._reloading = True
        try:
            wait = _RELOAD_ACQUIRE_SECONDS if within_grace else db.ACQUIRE_TIMEOUT_SECONDS
            await self.load(acquire_timeout=wait)
        except Exception as exc:
            if not within_grace or outages.dependency_of(exc) is None:
                raise
            self._retry_at = time.monotonic() + _RETRY_SECONDS
            log.warning(
                "signing keys not reloaded (%s); the loaded ones verify", type(exc).__name__
            )
        finally:
            self._reloading = False

    async def sign(self, *, user_id: uuid.UUID, sid: str, client_id: str) -> tuple[str, int]:
        await self.refresh()
        active = [k for k in self._keys.values() if k.active]
        if not active:
            await self.ensure_active()
            active = [k for k in self._keys.values() if k.active]
        key = active[0]
        now = datetime.now(UTC)
        ttl = self._settings.access_token_ttl_seconds
        claims = {
            "iss": self._settings.issuer,
            "aud": self._settings.audience,
            "sub": str(user_id),
            "iat": now,
            "nbf": now,
            "exp": now + timedelta(seconds=ttl),
            "jti": uuid.uuid4().hex,
            "sid": sid,
            "client_id": client_id,
        }
        token = jwt.encode(claims, key.private, algorithm=key.algorithm, headers={"kid": key.kid})
        return token, ttl

    async def verify(self, token: str) -> Claims:
        await self.refresh()
        cached = self._verified.get(token)
        if cached is not None and cached[1] > time.time():
            return cached[0]
        claims, expires = await self._verify(token)
        self._verified[token] = (claims, expires)
        if len(self._verified) > _VERIFIED_MAX:
            self._verified.popitem(last=False)
        return claims

    async def _verify(self, token: str) -> tuple[Claims, float]:
        header = crypto.unverified_header(token)
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in crypto.ALLOWED_ALGORITHMS or not isinstance(kid, str):
            raise Unauthenticated("invalid access token")
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._last_forced > 1.0:
            self._last_forced = time.monotonic()
            await self.load()
            key = self._keys.get(kid)
        if key is None or key.algorithm != alg:
            raise Unauthenticated("invalid access token")
        try:
            data = jwt.decode(
                token,
                key.public,
                algorithms=[key.algorithm],
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                options={"require": ["iss", "aud", "sub", "exp", "iat", "jti", "sid"]},
            )
            claims = Claims(
                sub=uuid.UUID(str(data["sub"])),
                sid=str(data["sid"]),
                jti=str(data["jti"]),
                client_id=str(data.get("client_id", "")),
            )
            return claims, float(data["exp"])
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("access token expired") from None
        except (jwt.InvalidTokenError, ValueError):
            raise Unauthenticated("invalid access token") from None

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk for k in sorted(self._keys.values(), key=lambda k: k.kid)]}

    async def rotate(self) -> str:
        """Make a new key the signer; the old one keeps verifying. Returns the new kid."""
        material = self._new_key()
        async with db.transaction(self._pool) as conn:
            await repository.lock_keys(conn)
            await repository.deactivate_keys(conn)
            await repository.insert_key(conn, material, active=True)
        await self.load()
        return material.kid

    async def retire(self, kid: str) -> bool:
        """Stop verifying tokens signed by ``kid`` (never the active key)."""
        async with db.transaction(self._pool) as conn:
            done = await repository.retire_key(conn, kid)
        await self.load()
        return done

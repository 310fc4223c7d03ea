"""API keys: who may post events to this tenant's ingestion pods.

`KeyValidator.lookup(key)` says what a key is (`KeyInfo`) or None when unknown;
`authorize` applies the rule of this service: the key is active, not expired,
has scope `events:write` and belongs to this pod's tenant.

Two validators, both real deployment modes:

- `IntrospectionValidator`: the SaaS mode. Asks the control plane
  (`POST /internal/v1/apikeys/introspect` through the process's
  `tenantry.internal_client`; payloads in `tenantry.internal_api`) and caches
  answers in-process:
  known keys for `ttl` seconds (never past their expiry), unknown or inactive
  ones for the shorter `negative_ttl`, so a revoked key stops working within
  `ttl` and a brute-force attempt does not reach the control plane for every
  request. Concurrent look-ups of one key share one request. A key that does
  not have the shape of a Tenantry key (`tenantry.contract.is_api_key`: a
  pasted JWT, a truncated key) is refused with 401 without asking at all, and
  a key the control plane refuses as malformed (400/422) is unknown, not an
  outage: clients must not be told to retry it.
- `StaticKeyValidator`: standalone deployments without a control plane, and
  local runs. TENANTRY_INGEST_KEYS lists sha256 digests of the accepted keys
  (the keys themselves are never configured, so the pod spec does not leak
  them); every listed key gets this tenant and `events:write`.

Keys are never logged, and the cache is keyed by the key's sha256 digest.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from ingestion.settings import key_digest
from tenantry import contract
from tenantry.internal_api import Introspection
from tenantry.internal_client import InternalClient, Refused, Unavailable

logger = logging.getLogger(__name__)

WRITE_SCOPE = "events:write"


@dataclass(frozen=True)
class KeyInfo:
    """What the control plane knows of a key (the introspection contract)."""

    active: bool
    tenant: str
    org_id: str
    scopes: frozenset[str]
    expires_at: dt.datetime | None = None


class KeyRejected(Exception):
    """The request may not post events; `status` is 401 or 403."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class KeyServiceUnavailable(Exception):
    """The key could not be checked (control plane unreachable): answer 503."""


class KeyValidator(Protocol):
    async def lookup(self, key: str) -> KeyInfo | None:
        """What `key` is, or None when it is unknown."""
        ...

    async def close(self) -> None: ...


def authorize(info: KeyInfo | None, *, tenant: str, now: dt.datetime) -> KeyInfo:
    """The key's info when it may write events to `tenant`, else KeyRejected."""
    if info is None or not info.active:
        raise KeyRejected(401, "unknown or inactive API key")
    if info.expires_at is not None and info.expires_at <= now:
        raise KeyRejected(401, "expired API key")
    if info.tenant != tenant:
        raise KeyRejected(403, "this API key belongs to another tenant")
    if WRITE_SCOPE not in info.scopes:
        raise KeyRejected(403, f"this API key lacks the scope {WRITE_SCOPE}")
    return info


class StaticKeyValidator:
    """Keys whose sha256 digests are configured (TENANTRY_INGEST_KEYS)."""

    def __init__(self, digests: frozenset[str], *, tenant: str) -> None:
        self._digests = digests
        self._info = KeyInfo(active=True, tenant=tenant, org_id="", scopes=frozenset({WRITE_SCOPE}))

    async def lookup(self, key: str) -> KeyInfo | None:
        return self._info if key_digest(key) in self._digests else None

    async def close(self) -> None:
        return None


Fetch = Callable[[str], Awaitable[KeyInfo | None]]


class CachingValidator:
    """A look-up function behind a TTL cache with a single flight per key.

    `clock` is injectable (monotonic seconds) so the TTL logic is tested
    without waiting. Positive answers live `ttl` seconds but never past the
    key's `expires_at`; None and inactive answers live `negative_ttl`.
    Failures (KeyServiceUnavailable) are not cached.
    """

    def __init__(
        self,
        fetch: Fetch,
        *,
        ttl: float = 60.0,
        negative_ttl: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max = max_entries
        self._clock = clock
        self._wall = wall_clock
        self._cache: OrderedDict[str, tuple[float, KeyInfo | None]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[KeyInfo | None]] = {}
        self.fetches = 0

    def _lifetime(self, info: KeyInfo | None) -> float:
        if info is None or not info.active:
            return self._negative_ttl
        if info.expires_at is None:
            return self._ttl
        left = (info.expires_at - self._wall()).total_seconds()
        return max(0.0, min(self._ttl, left))

    async def lookup(self, key: str) -> KeyInfo | None:
        digest = key_digest(key)
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > self._clock():
            self._cache.move_to_end(digest)
            return cached[1]
        pending = self._inflight.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[KeyInfo | None] = asyncio.get_running_loop().create_future()
        self._inflight[digest] = future
        try:
            self.fetches += 1
            info = await self._fetch(key)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            del self._inflight[digest]
        future.set_result(info)
        self._cache[digest] = (self._clock() + self._lifetime(info), info)
        self._cache.move_to_end(digest)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return info

    async def close(self) -> None:
        self._cache.clear()


def key_info(answer: Introspection) -> KeyInfo | None:
    """KeyInfo from the control plane's answer; None when inactive. An expiry without a
    time zone is read as UTC."""
    if not answer.active:
        return None
    expires_at = answer.expires_at
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=dt.UTC)
    return KeyInfo(
        active=True,
        tenant=answer.tenant,
        org_id=answer.org_id,
        scopes=frozenset(answer.scopes),
        expires_at=expires_at,
    )


class IntrospectionValidator:
    """Keys checked at the control plane's introspection endpoint, cached."""

    def __init__(
        self,
        client: InternalClient,
        *,
        ttl: float = 60.0,
        negative_ttl: float = 5.0,
    ) -> None:
        self._client = client
        self._cache = CachingValidator(self._introspect, ttl=ttl, negative_ttl=negative_ttl)

    async def _introspect(self, key: str) -> KeyInfo | None:
        try:
            answer = await self._client.introspect(key)
        except Refused as exc:  # 401/403: our internal token, not the key, was refused
            logger.error("control plane refused our internal token (%s)", exc.status)
            raise KeyServiceUnavailable(f"introspection answered {exc.status}") from exc
        except Unavailable as exc:
            raise KeyServiceUnavailable(f"introspection failed: {exc}") from exc
        return None if answer is None else key_info(answer)

    async def lookup(self, key: str) -> KeyInfo | None:
        if not contract.is_api_key(key):
            raise KeyRejected(
                401, f"malformed API key: Tenantry API keys read {contract.API_KEY_SHAPE}"
            )
        return await self._cache.lookup(key)

    async def close(self) -> None:
        """Drops the cache; the internal-API client belongs to the process."""
        await self._cache.close()

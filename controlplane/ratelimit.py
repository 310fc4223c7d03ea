"""Fixed-window rate limits in Redis, per client IP and per identity.

Used on the authentication routes, where guessing is the threat: the per-IP limit slows
one machine trying many accounts, the per-identity limit slows many machines trying one
account. Windows are shared by every replica because the counters live in Redis. The
OAuth token endpoint also limits per client (``client``: a public client is one identity
shared by all its users, with its own larger limit) and answers in the OAuth error shape.
The per-IP limit is applied by the ``deps.PerIp`` dependency; this module knows no HTTP.
"""

from __future__ import annotations

import hashlib
import time

from redis.asyncio import Redis

from controlplane.errors import RateLimited
from controlplane.settings import Settings


class RateLimiter:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._window = settings.rate_limit_window_seconds
        self.per_ip = settings.rate_limit_per_ip
        self.per_identity = settings.rate_limit_per_identity
        self.per_client = settings.rate_limit_per_client

    async def hit(self, bucket: str, key: str, *, limit: int) -> None:
        """Count one request; raise ``RateLimited`` beyond ``limit`` in this window."""
        now = int(time.time())
        window = now // self._window
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]  # no e-mails in Redis keys
        name = f"rl:{bucket}:{digest}:{window}"
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(name)
        pipe.expire(name, self._window + 1)
        count, _ = await pipe.execute()
        if int(count) > limit:
            raise RateLimited(retry_after=(window + 1) * self._window - now)

    async def identity(self, bucket: str, identity: str) -> None:
        await self.hit(f"{bucket}:id", identity.lower(), limit=self.per_identity)

    async def client(self, bucket: str, client_id: str) -> None:
        # Not lowercased: client ids are matched exactly.
        await self.hit(f"{bucket}:client", client_id, limit=self.per_client)

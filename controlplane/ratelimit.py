"""Rate limits of the control plane: moving windows in Redis (``tenantry.ratelimit``).

On the authentication routes guessing is the threat: the per-IP limit slows one machine
trying many accounts, the per-identity limit slows many machines trying one account.
The OAuth token endpoint also limits per client (``client``: a public client is one
identity shared by all its users, with its own larger limit) and answers in the OAuth
error shape. On the data routes (panel queries) cost is the threat: each organisation
has its own budget, so one organisation's traffic never throttles another's.

Every limit is "at most N requests in any ``rate_limit_window_seconds``", shared by all
replicas because the request times live in Redis; a refusal is ``RateLimited`` (429)
with ``Retry-After``: the seconds until the oldest counted request leaves the window.
The per-IP limit is applied by the ``deps.PerIp`` dependency; this module knows no HTTP.
"""

from __future__ import annotations

from limits import RateLimitItem
from redis.asyncio import Redis

from controlplane.errors import RateLimited
from controlplane.settings import Settings
from tenantry import ratelimit


class RateLimiter:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._window = ratelimit.MovingWindow(redis)
        seconds = settings.rate_limit_window_seconds
        self.per_ip = ratelimit.per_window(settings.rate_limit_per_ip, seconds)
        self.per_identity = ratelimit.per_window(settings.rate_limit_per_identity, seconds)
        self.per_client = ratelimit.per_window(settings.rate_limit_per_client, seconds)
        self.panel_queries_per_org = ratelimit.per_window(
            settings.rate_limit_panel_queries_per_org, seconds
        )

    async def hit(self, bucket: str, key: str, *, limit: RateLimitItem) -> None:
        """Count one request; raise ``RateLimited`` when ``limit`` is already reached."""
        refused = await self._window.hit(limit, bucket, key)
        if refused is not None:
            raise RateLimited(retry_after=refused.retry_after)

    async def identity(self, bucket: str, identity: str) -> None:
        await self.hit(f"{bucket}:id", identity.lower(), limit=self.per_identity)

    async def client(self, bucket: str, client_id: str) -> None:
        # Not lowercased: client ids are matched exactly.
        await self.hit(f"{bucket}:client", client_id, limit=self.per_client)

    async def panel_query(self, org_id: str) -> None:
        """One panel query (data or chart) of organisation ``org_id``."""
        await self.hit("panels:org", org_id, limit=self.panel_queries_per_org)

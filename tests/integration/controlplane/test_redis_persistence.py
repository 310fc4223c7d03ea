"""A restart of the control plane's Redis signs nobody out (issue 18, item 16).

Sessions are refresh-token families in Redis (``auth.repository.SessionStore``). The
launcher ``make dev`` and these tests share (``tenantry_dev.services.RedisServer``)
runs Redis with its append-only file, as the chart's README section asks of a
production Redis; a Redis without persistence forgets every family on restart, and this
test then fails: the refreshed token would come back ``missing``."""

from __future__ import annotations

import uuid
from pathlib import Path

from redis.asyncio import Redis

from controlplane.auth.repository import SessionStore
from tests.integration.controlplane.servers import RedisServer
from tests.support.wait import scaled


async def test_sessions_survive_a_redis_restart(tmp_path: Path) -> None:
    folder = tmp_path / "redis"
    server = RedisServer.start(folder, timeout=scaled(60))
    try:
        client = Redis.from_url(server.url)
        store = SessionStore(client, ttl=3600, code_ttl=60)
        user = uuid.uuid4()
        family = await store.new_family(user)
        token = await store.issue(family=family, user_id=str(user), client_id="console")
        await client.aclose()
    finally:
        server.stop(grace=scaled(10))  # SIGTERM, as a pod restart sends it

    server = RedisServer.start(folder, port=server.port, timeout=scaled(60))
    try:
        client = Redis.from_url(server.url)
        store = SessionStore(client, ttl=3600, code_ttl=60)
        assert await store.family_active(family)
        use = await store.use(token)
        assert (use.outcome, use.family, use.user_id) == ("ok", family, str(user))
        await client.aclose()
    finally:
        server.stop(grace=scaled(10))

"""ClickHouse access for Tenantry: one client interface, two adapters, the tenant schema.

- `client`: the `ClickHouseClient` protocol (command, query, insert,
  insert_json), its async facade, errors, quoting and parameter helpers.
- `chdb_client`: the adapter on chDB, the engine in-process (local runs, tests).
- `http_client`: the adapter on clickhouse-connect over HTTP (deployments).
- `loopback_server`: a ClickHouse-HTTP endpoint over chDB, so the HTTP adapter
  is exercised against the real engine where no server can be installed.
- `schema`: the tenant's database, events table, Distributed table, TTL and
  materialized views as SQL, and `provision` to apply them idempotently.
- `access`: users, roles, settings profiles, quotas and row policy as SQL.

`open_client(url)` picks the adapter from a URL, so a configurable endpoint
(for example the operator's override for local e2e runs) is one string:
`chdb:///var/lib/tenantry/chdb` or `http://user:password@host:8123/database`.
Adapters are imported on demand: chDB is a large library.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from tenantry.clickhouse.client import ClickHouseClient


def open_client(url: str) -> ClickHouseClient:
    """The adapter a URL names: `chdb://<absolute path>` or `http(s)://...`."""
    parts = urlsplit(url)
    if parts.scheme == "chdb":
        from tenantry.clickhouse.chdb_client import ChdbClient

        path = unquote(parts.netloc + parts.path)
        if not path.startswith("/"):
            raise ValueError(f"chdb URL needs an absolute path: {url!r}")
        return ChdbClient(path)
    if parts.scheme in ("http", "https"):
        from tenantry.clickhouse.http_client import HttpClickHouseClient

        secure = parts.scheme == "https"
        return HttpClickHouseClient(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8443 if secure else 8123),
            username=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            database=parts.path.strip("/") or None,
            secure=secure,
        )
    raise ValueError(f"unsupported ClickHouse URL scheme {parts.scheme!r}: use chdb or http(s)")

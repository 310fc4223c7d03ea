"""ClickHouse access for Tenantry: one client interface, two adapters, the tenant schema.

- `client`: the `ClickHouseClient` protocol (command, query, insert,
  insert_json), its async facade, errors, quoting and parameter helpers.
- `chdb_client`: the adapter on chDB, the engine in-process (local runs, tests).
- `http_client`: the adapter on clickhouse-connect over HTTP (deployments).
- `schema`: the tenant's database, events table, Distributed table, TTL and
  materialized views as SQL, and `provision` to apply them idempotently.

Users, their rights, settings profiles and quotas are not here: they are declared in
the server's users.xml, which the operator's ClickHouse builder renders from the plan
(see the README, "ClickHouse users and least privilege").

`open_client(url)` picks the adapter from a URL, so a configurable endpoint
(for example the operator's override for local e2e runs) is one string:
`chdb:///var/lib/tenantry/chdb` or `http://user:password@host:8123/database`.
Adapters are imported on demand: chDB is a large library. The HTTP adapter is tested
against `tenantry_dev.loopback_server` (dev-only), a ClickHouse-HTTP endpoint over chDB.

`open_tenant_client(url, database=...)` opens a client whose *current* database is a
tenant's (panel SQL names `events` without a database): over HTTP the URL's path, on
chDB a connection of its own on which `USE` ran once. The operator validates panels
with it, the control plane runs them with it.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

from tenantry.clickhouse.client import ClickHouseClient, quote_identifier


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


def with_database(url: str, database: str) -> str:
    """An http(s) URL whose path names `database` (clickhouse-connect's default database)."""
    quote_identifier(database)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"only http(s) URLs name a database, not {parts.scheme!r}")
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def open_tenant_client(url: str, *, database: str) -> ClickHouseClient:
    """A client whose current database is `database` (which must exist).

    Blocking (it connects): call it in a thread from async code.
    """
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return open_client(with_database(url, database))
    client = open_client(url)
    try:
        client.command(f"USE {quote_identifier(database)}")
    except Exception:
        client.close()
        raise
    return client

"""How the operator reaches a tenant's ClickHouse, and how it never leaks the password.

In a cluster the operator talks to the tenant's ClickHouse as `admin` (password in
Secret `clickhouse-credentials`, key `admin-password`, in the tenant's namespace):
the schema step to each host through that host's own Service (`ch-s<s>-r<r>`, which
publishes the pod whatever its labels), the dashboards through the `clickhouse`
Service (hosts that carry the schema). For local e2e runs no ClickHouse server exists, so the
setting `TENANTRY_CLICKHOUSE_URL_OVERRIDE` replaces that URL with one engine for
every tenant: the loopback ClickHouse-HTTP endpoint over chDB
(`http://user:pw@127.0.0.1:PORT/`) or chDB itself (`chdb:///path`). Because one
engine may then host several tenants, every tenant lives in its own database,
`t_<name>` (`database_name`), in deployments too.

Panel SQL names tables without a database (`FROM events`), so the dashboard
step needs a client whose *current* database is the tenant's
(`tenantry.clickhouse.open_tenant_client`, shared with the control plane): over HTTP
that is the URL's path (the `database` parameter of every request); on chDB a
connection of its own on which `USE` ran once (connections on one path share the
engine, each keeps its own current database).

URLs carry the password: log them only through `redact_url`.

Every step opens its client through `session`, which also bounds how many the
operator has open at once (`MAX_SESSIONS`): opening one reads the server's whole
`system.settings` (clickhouse-connect), a few MB while it is parsed, and at
hundreds of tenants the schema steps, usage samples and dashboards would
otherwise do that together (measured: 36 MB of the operator's peak at 500 tenants).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import weakref
from collections.abc import AsyncIterator
from urllib.parse import quote, urlsplit, urlunsplit

from tenantry import contract
from tenantry.clickhouse import open_client, open_tenant_client
from tenantry.clickhouse.client import ClickHouseClient
from tenantry_operator.builders import clickhouse, common
from tenantry_operator.kube import Kube
from tenantry_operator.model import TenantModel

ADMIN_USER = "admin"
HTTP_PORT = clickhouse.HTTP_PORT
MAX_SESSIONS = 2  # ClickHouse clients the operator has open at once (see above)
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def database_name(model: TenantModel) -> str:
    """The tenant's database (see ``TenantModel.database``)."""
    return model.database


def clickhouse_url(
    model: TenantModel,
    admin_password: str | None,
    *,
    override: str | None,
    host: str | None = None,
) -> str:
    """The URL the operator opens for `model` (`tenantry.clickhouse.open_client`).

    Default: the tenant Service as `admin`,
    `http://admin:<pw>@clickhouse.<ns>.svc.cluster.local:8123/`, or with `host` that
    host's own Service (`ch-s0-r1.<ns>.svc.cluster.local`). The override, when set, is
    used as it is (it carries its own credentials, if any), and the password is not
    needed.
    """
    if override:
        return override
    if admin_password is None:
        raise ValueError(f"no ClickHouse admin password for tenant {model.name}")
    user = quote(ADMIN_USER, safe="")
    password = quote(admin_password, safe="")
    address = common.service_host(model, host or clickhouse.SERVICE)
    return f"http://{user}:{password}@{address}:{HTTP_PORT}/"


def redact_url(url: str) -> str:
    """`url` with its password (if any) replaced by `***`, safe to log."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, ""))


async def admin_password(kube: Kube, model: TenantModel) -> str | None:
    """The tenant's ClickHouse admin password, None while its Secret does not exist."""
    secret = await kube.get("v1", "Secret", contract.CLICKHOUSE_SECRET, namespace=model.namespace)
    if secret is None:
        return None
    encoded = (secret.get("data") or {}).get(contract.CLICKHOUSE_PASSWORD_KEYS["admin"])
    if not encoded:
        return None
    return base64.b64decode(encoded).decode()


async def open_for_tenant(
    kube: Kube, model: TenantModel, *, override: str | None, scoped: bool, host: str | None = None
) -> ClickHouseClient | None:
    """A client on the tenant's ClickHouse, None while its credentials Secret is missing.

    `scoped`: the tenant's database is the current database (dashboards; it must
    exist), else none is (schema provisioning); `host`: that host's Service instead of
    the cluster's (schema provisioning). Close the client when done
    (`await asyncio.to_thread(client.close)`); steps use `session`, which does. Raises
    ClickHouseError when the server cannot be reached; log the URL only through
    `redact_url`.
    """
    password = None if override else await admin_password(kube, model)
    if password is None and not override:
        return None
    url = clickhouse_url(model, password, override=override, host=host)
    if scoped:
        return await asyncio.to_thread(open_tenant_client, url, database=database_name(model))
    return await asyncio.to_thread(open_client, url)


@contextlib.asynccontextmanager
async def session(
    kube: Kube, model: TenantModel, *, override: str | None, scoped: bool, host: str | None = None
) -> AsyncIterator[ClickHouseClient | None]:
    """`open_for_tenant` for the length of a block, closed after it, with at most
    `MAX_SESSIONS` open at once in this event loop (the others wait their turn)."""
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(MAX_SESSIONS)
    async with gate:
        client = await open_for_tenant(kube, model, override=override, scoped=scoped, host=host)
        try:
            yield client
        finally:
            if client is not None:
                await asyncio.to_thread(client.close)

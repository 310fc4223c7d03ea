"""Rules of dashboards: the referenced tenant must belong to the same organisation, the
plan's dashboard limit holds, and reads only ever return this organisation's objects."""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import math
import re
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
from redis.asyncio import Redis

from controlplane.audit import service as audit
from controlplane.context import OrgAccess, RequestInfo
from controlplane.dashboards import chart, params, repository
from controlplane.dashboards.schemas import (
    Column,
    DashboardCreate,
    DashboardOut,
    DashboardUpdate,
    PanelData,
)
from controlplane.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PlanLimitExceeded,
    Unavailable,
)
from controlplane.kube import CustomObject, CustomResources, KubeResources
from controlplane.orgs import plans
from controlplane.settings import Settings
from controlplane.tenants import repository as tenant_repository
from tenantry import contract
from tenantry.api.dashboard import DashboardSpec
from tenantry.api.plans import PRESETS, Plan
from tenantry.clickhouse.client import ClickHouseError
from tenantry.dashboards import panels

log = logging.getLogger("tenantry.controlplane.dashboards")


def _crs(kube: KubeResources | None) -> tuple[CustomResources, CustomResources]:
    if kube is None:
        raise Unavailable("Kubernetes is not configured for this control plane")
    return kube.dashboards, kube.tenants


def _out(access: OrgAccess, obj: CustomObject) -> DashboardOut:
    spec = dict(obj.spec)
    ref = dict(spec.get("tenantRef") or {})
    prefix = f"{access.org.slug}-"
    tenant = str(ref.get("name", ""))
    tenant = tenant.removeprefix(prefix)
    spec["tenantRef"] = {**ref, "name": tenant}
    return DashboardOut(
        name=obj.labels.get(contract.LABEL_NAME, obj.name),
        resource_name=obj.name,
        tenant=tenant,
        spec=spec,
        status=obj.status,
        generation=obj.generation,
        created=obj.created,
    )


async def _spec(tenants: CustomResources, access: OrgAccess, spec: DashboardSpec) -> dict[str, Any]:
    tenant = spec.tenant_ref.name
    if await tenant_repository.get(tenants, access.org, tenant) is None:
        raise InvalidInput(f"spec.tenantRef.name: no tenant {tenant!r} in this organisation")
    raw = spec.model_dump(by_alias=True, exclude_unset=True, mode="json")
    raw["tenantRef"] = {"name": tenant_repository.resource_name(access.org, tenant)}
    return raw


async def create(
    conn: asyncpg.Connection,
    kube: KubeResources | None,
    access: OrgAccess,
    body: DashboardCreate,
    info: RequestInfo,
) -> DashboardOut:
    dashboards, tenants = _crs(kube)
    existing = await repository.list_all(dashboards, access.org)
    limit = plans.limits(access.org.plan).max_dashboards
    if len(existing) >= limit:
        raise PlanLimitExceeded(f"the {access.org.plan} plan allows {limit} dashboards")
    spec = await _spec(tenants, access, body.spec)
    await audit.record_as(
        conn, access, action="dashboard.create", target=f"dashboard/{body.name}", info=info
    )
    return _out(access, await repository.create(dashboards, access.org, body.name, spec))


async def list_visible(kube: KubeResources | None, access: OrgAccess) -> list[DashboardOut]:
    dashboards, _ = _crs(kube)
    items = [_out(access, o) for o in await repository.list_all(dashboards, access.org)]
    return [d for d in items if access.allows("dashboards:read", scope=("dashboard", d.name))]


async def get(kube: KubeResources | None, access: OrgAccess, name: str) -> DashboardOut:
    dashboards, _ = _crs(kube)
    obj = await repository.get(dashboards, access.org, name)
    if obj is None:
        raise NotFound("dashboard not found")
    return _out(access, obj)


async def update(
    conn: asyncpg.Connection,
    kube: KubeResources | None,
    access: OrgAccess,
    *,
    name: str,
    body: DashboardUpdate,
    info: RequestInfo,
) -> DashboardOut:
    dashboards, tenants = _crs(kube)
    if await repository.get(dashboards, access.org, name) is None:
        raise NotFound("dashboard not found")
    spec = await _spec(tenants, access, body.spec)
    await audit.record_as(
        conn, access, action="dashboard.update", target=f"dashboard/{name}", info=info
    )
    return _out(access, await repository.replace_spec(dashboards, access.org, name, spec))


async def delete(
    conn: asyncpg.Connection,
    kube: KubeResources | None,
    access: OrgAccess,
    *,
    name: str,
    info: RequestInfo,
) -> None:
    dashboards, _ = _crs(kube)
    if await repository.get(dashboards, access.org, name) is None:
        raise NotFound("dashboard not found")
    await audit.record_as(
        conn, access, action="dashboard.delete", target=f"dashboard/{name}", info=info
    )
    await repository.delete(dashboards, access.org, name)


# -- panel data ------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    """A result value as JSON: times as RFC 3339, 64-bit integers beyond 2**53 and
    decimals as text (a JavaScript reader would round them), NaN/inf as null."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if abs(value) <= 2**53 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_cell(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _cell(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def panel_limits(settings: Settings, tenant_spec: dict[str, Any]) -> repository.Limits:
    """The limits a panel query is sent with: the tenant plan's reader limits, lowered
    by the control plane's caps when set. The reader's settings profile pins each limit
    between 1 and the plan's value (users.xml), so ClickHouse would refuse a larger one."""
    try:
        reader = PRESETS[Plan(str(tenant_spec.get("plan") or Plan.STARTER.value))].reader
    except ValueError:
        reader = PRESETS[Plan.STARTER].reader  # the smallest: an unknown plan gets no more

    def capped(plan_value: int, cap: int | None) -> int:
        return plan_value if cap is None else min(plan_value, cap)

    return repository.Limits(
        max_execution_seconds=capped(
            reader.max_execution_time_s, settings.panel_max_execution_seconds
        ),
        max_result_rows=capped(reader.max_result_rows, settings.panel_max_result_rows),
        readonly=settings.panel_readonly,
    )


async def _reader_url(kube: KubeResources, settings: Settings, tenant: str) -> str:
    if settings.clickhouse_url_override:
        return settings.clickhouse_url_override
    password = await kube.secret_value(
        contract.tenant_namespace(tenant),
        contract.CLICKHOUSE_SECRET,
        contract.CLICKHOUSE_PASSWORD_KEYS[repository.READER_USER],
    )
    if password is None:
        raise Unavailable("the tenant's ClickHouse credentials are not ready yet")
    return repository.clickhouse_url(tenant, password)


# ClickHouse names the query parameter whose value it could not read as its type.
_PARAMETER_VALUE = re.compile(r"for query parameter '([A-Za-z_][A-Za-z0-9_]*)'")


def _query_failed(error: ClickHouseError, query: params.Query) -> Exception:
    if error.code in panels.TRANSIENT_CODES:
        log.warning("panel query: ClickHouse unavailable (code %s)", error.code)
        return Unavailable("the tenant's ClickHouse is unavailable; retry shortly")
    if error.code == 201:  # QUOTA_EXCEEDED: the reader's hourly quota, the plan's
        return PlanLimitExceeded(
            "the tenant's plan allows no more dashboard queries this hour; "
            "cached panels still answer"
        )
    if error.code in (158, 396):  # TOO_MANY_ROWS, TOO_MANY_ROWS_OR_BYTES
        return InvalidInput("the result exceeds the row limit: narrow the time range")
    message = panels.friendly_error(error, sql=query.sql)
    unreadable = _PARAMETER_VALUE.search(str(error))
    if unreadable and unreadable.group(1) in query.sources:
        # A value the request gave that the panel's {name:Type} cannot hold (var.n=5m
        # for a UInt32): the request's error. A stored default is the panel's.
        return InvalidInput(f"{query.sources[unreadable.group(1)]}: {message}")
    return Conflict(f"the panel's query failed: {message}")


@dataclass(frozen=True)
class PanelResult:
    data: PanelData
    title: str
    visualization: str
    tenant: str
    """The Tenant CR the query ran on (what billing meters the query against)."""


async def panel_data(
    kube: KubeResources | None,
    redis: Redis,
    settings: Settings,
    access: OrgAccess,
    *,
    dashboard: str,
    panel_id: str,
    query: dict[str, str],
    now: dt.datetime | None = None,
) -> PanelResult:
    """The panel's result, its title and visualization (for the chart).

    Order of checks: the dashboard and panel exist in this organisation (404), the
    request's values are acceptable (422), the operator's status vouches for the
    panel's current SQL (409); only then is the cache, and on a miss ClickHouse, asked.
    """
    dashboards, tenants = _crs(kube)
    assert kube is not None
    obj = await repository.get(dashboards, access.org, dashboard)
    if obj is None:
        raise NotFound("dashboard not found")
    spec = DashboardSpec.model_validate(obj.spec)
    panel = params.find_panel(spec, panel_id)
    if panel is None:
        raise NotFound("panel not found")
    now = now or dt.datetime.now(dt.UTC)
    try:
        built = params.build_query(
            spec,
            panel,
            time_from=query.get("from"),
            time_to=query.get("to"),
            variables=params.request_variables(query),
            now=now,
        )
    except params.BadRequest as err:
        raise InvalidInput(str(err)) from None
    except params.PanelUnusable as err:
        raise Conflict(f"panel {panel_id} is invalid: {err}") from None
    problem = params.panel_status_problem(obj.status, panel_id, generation=obj.generation)
    if problem:
        raise Conflict(problem)
    key = repository.cache_key(
        str(access.org.id), obj.name, obj.generation, panel_id, built.fingerprint()
    )
    cached = await repository.cache_get(redis, key)
    if cached is not None:
        hit = PanelData.model_validate({**cached, "cached": True})
        return PanelResult(hit, panel.title, panel.visualization, spec.tenant_ref.name)
    tenant = spec.tenant_ref.name
    tenant_obj = await tenants.get(tenant)
    if tenant_obj is None or tenant_obj.labels.get(contract.LABEL_ORG) != str(access.org.id):
        raise Conflict("the dashboard's tenant no longer exists")
    url = await _reader_url(kube, settings, tenant)
    limits = panel_limits(settings, tenant_obj.spec)
    try:
        result = await repository.run_panel_query(
            url,
            database=contract.tenant_database(tenant),
            sql=built.sql,
            params=built.params,
            limits=limits,
        )
    except ClickHouseError as err:
        raise _query_failed(err, built) from None
    except (TimeoutError, OSError):
        raise Unavailable("the tenant's ClickHouse is unavailable; retry shortly") from None
    data = PanelData(
        columns=[Column(name=n, type=t) for n, t in result.columns],
        rows=[[_cell(v) for v in row] for row in result.rows],
        cached=False,
        generated_at=dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
    )
    ttl = params.refresh_seconds(spec.refresh)
    await repository.cache_put(redis, key, data.model_dump(by_alias=True, exclude={"cached"}), ttl)
    return PanelResult(data, panel.title, panel.visualization, tenant)


def panel_chart(data: PanelData, *, title: str, visualization: str) -> str:
    return chart.render(
        title=title,
        visualization=visualization,
        columns=[(c.name, c.type) for c in data.columns],
        rows=data.rows,
    )

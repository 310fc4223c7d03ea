"""kopf handlers: thin. They unpack kopf's arguments and call the reconcile steps.

Each Tenant has one worker (a kopf daemon), so a tenant is never reconciled twice at
once. The worker sleeps until something relevant happens: the Tenant's spec changes,
one of its children changes (watched below, by label), or the periodic resync is due.
A deleted or hand-edited child therefore triggers a reconcile within moments.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Coroutine
from typing import Any, NoReturn

import kopf
from pydantic import ValidationError

from tenantry.api import GROUP, VERSION
from tenantry.api.dashboard import DashboardSpec
from tenantry.clickhouse.client import ClickHouseError
from tenantry_operator import (
    admission,
    apply,
    builders,
    failures,
    finalize,
    normalize,
    observe,
    reconcile,
    usage,
    watch,
)
from tenantry_operator.cache import ChildCache, dictionary_from
from tenantry_operator.dataplane import connect, dashboards
from tenantry_operator.kube import Kube
from tenantry_operator.model import LABEL_MANAGED_BY, LABEL_TENANT, MANAGED_BY
from tenantry_operator.settings import Settings

log = logging.getLogger(__name__)
DEBOUNCE_SECONDS = 0.05
# kopf takes a timer's interval when the handler is registered, at import: this one
# setting is read then (the rest at startup, from the same model).
USAGE_INTERVAL = Settings.from_env().usage_interval_seconds
ORG_LABEL = normalize.ORG_LABEL


class Runtime:
    """Process-wide state: the API client, settings and the per-tenant wake-up events."""

    kube: Kube | None = None
    settings: Settings = Settings.from_env({})  # defaults; startup reads the environment
    cache: ChildCache = ChildCache()
    failed: failures.Failures = failures.Failures()  # warnings about tenants' pods
    slots: asyncio.Semaphore | None = None  # bounds concurrent reconciles
    limits: admission.LimitsSource | None = None  # plan limits, when a control plane is set
    watches: list[asyncio.Task[None]] = []  # watch.py's loops over the children
    triggers: dict[str, asyncio.Event] = {}

    @classmethod
    def trigger(cls, tenant: str) -> asyncio.Event:
        return cls.triggers.setdefault(tenant, asyncio.Event())

    @classmethod
    def client(cls) -> Kube:
        if cls.kube is None:
            cls.kube = Kube.from_env()
        return cls.kube


@kopf.on.startup()
async def startup(**_: Any) -> None:
    Runtime.settings = Settings.from_env()
    settings = Runtime.settings
    Runtime.cache = ChildCache(dictionary=_sample_children(settings))
    Runtime.slots = asyncio.Semaphore(settings.max_concurrent_reconciles)
    if settings.controlplane_url and settings.internal_token:
        Runtime.limits = admission.LimitsSource(
            url=settings.controlplane_url,
            token=settings.internal_token,
            ttl=settings.plan_recheck_seconds,
        )
    Runtime.client()
    await _start_child_watches()


def _sample_children(settings: Settings) -> bytes:
    """The cache's compression dictionary: what a replicated tenant's children look like."""
    body = {"metadata": {"name": "sample"}, "spec": {"plan": "growth"}}
    return dictionary_from(builders.build(normalize.tenant_model(body, images=settings.images)))


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    for task in Runtime.watches:
        task.cancel()
    await asyncio.gather(*Runtime.watches, return_exceptions=True)
    Runtime.watches.clear()
    if Runtime.kube is not None:
        await Runtime.kube.close()
        Runtime.kube = None


# -- Tenant ---------------------------------------------------------------------------
@kopf.index(GROUP, VERSION, "tenants")
def tenants_by_org(name: str, meta: kopf.Meta, **_: Any) -> dict[str, tuple[str, str]] | None:
    """Live Tenants per organisation, (creationTimestamp, name): the plan's tenant count."""
    org = (meta.get("labels") or {}).get(ORG_LABEL)
    if not org or meta.get("deletionTimestamp"):
        return None
    return {org: (str(meta.get("creationTimestamp") or ""), name)}


@kopf.on.create(GROUP, VERSION, "tenants")
@kopf.on.update(GROUP, VERSION, "tenants", field="spec")
async def tenant_spec_changed(name: str, **_: Any) -> None:
    Runtime.trigger(name).set()


@kopf.daemon(
    GROUP,
    VERSION,
    "tenants",
    cancellation_timeout=10.0,
    when=lambda meta, **_: not meta.get("deletionTimestamp"),
)
async def tenant_worker(
    name: str,
    body: kopf.Body,
    stopped: kopf.DaemonStopped,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
    by_org: kopf.Index[str, tuple[str, str]] = kwargs["tenants_by_org"]  # the index above
    trigger = Runtime.trigger(name)
    settings = Runtime.settings
    last_status: dict[str, Any] | None = None
    last_generation = -1
    first = True
    backoff = settings.retry_first_seconds
    failures_in_a_row = 0
    namespace = normalize.namespace_of(name)
    while not stopped:
        await asyncio.sleep(DEBOUNCE_SECONDS)  # let a burst of watch events coalesce
        trigger.clear()
        raw = {
            "metadata": dict(body.metadata),
            "spec": dict(body.spec),
            "status": dict(body.status),
        }
        generation = int(raw["metadata"].get("generation") or 0)
        previous = last_status if generation == last_generation else None
        try:
            refusal = await _plan_refusal(name, raw, by_org)
            if refusal is not None:
                await _refuse(body, raw, refusal, reason=admission.REASON)
                last_status = None
                await _wait(trigger, stopped, settings.plan_recheck_seconds)
                continue
            async with _slot():
                outcome = await _reconcile_once(name, namespace, raw, previous, seeded=not first)
            first = False
        except ValidationError as err:
            # The API server accepted what the model refuses (a CRD older than the
            # models, or a rule CEL cannot express): refused like a plan violation.
            await _refuse(body, raw, invalid_spec(err), reason="InvalidSpec")
            last_status = None
            await _wait(trigger, stopped, settings.resync_seconds)
            continue
        except apply.Refused as err:
            # Kubernetes refused one of the children (an admission policy, a quota):
            # its words in the status, retried with a backoff.
            failures_in_a_row += 1
            logger.warning("reconcile of %s: %s", name, err.message)
            await _report_error(body, name, raw, err.reason, err.message)
            last_status = None
            await _wait(trigger, stopped, _backoff(failures_in_a_row))
            continue
        except Exception as err:  # keep the worker alive; retry with a backoff
            failures_in_a_row += 1
            logger.exception("reconcile of %s failed", name)
            message = f"{type(err).__name__}: {err}"[:1000]
            await _report_error(body, name, raw, "ReconcileError", message)
            last_status = None
            await _wait(trigger, stopped, _backoff(failures_in_a_row))
            continue
        failures_in_a_row = 0
        last_status, last_generation = outcome.status, generation
        for ev in outcome.events:
            (kopf.warn if ev.warning else kopf.info)(body, reason=ev.reason, message=ev.message)
        delay, backoff = next_wait(outcome, settings, backoff)
        if outcome.recheck_in is not None:
            delay = min(delay, outcome.recheck_in)
        await _wait(trigger, stopped, delay)


def next_wait(
    outcome: reconcile.Outcome, settings: Settings, backoff: float
) -> tuple[float, float]:
    """How long the worker sleeps unless woken, and the retry backoff after that.

    Converged: the resync. Waiting on what a watch announces (children becoming Ready):
    the busy recheck, a safety net. Waiting on what no watch announces (``retry``: the
    tenant's ClickHouse did not answer the schema step): the backoff, 1 s doubling up
    to ``retry_max_seconds``, reset by any other outcome. Before it, that wait was the
    30 s busy recheck: each refused attempt cost 30 s whatever ClickHouse did meanwhile,
    so two of them (start-up, a loaded machine) kept a new tenant from Ready for a
    minute."""
    if outcome.retry:
        return min(backoff, settings.busy_recheck_seconds), min(
            backoff * 2, settings.retry_max_seconds
        )
    first = settings.retry_first_seconds
    if outcome.converged:
        return settings.resync_seconds, first
    return settings.busy_recheck_seconds, first


async def _reconcile_once(
    name: str, namespace: str, raw: dict[str, Any], previous: Any, *, seeded: bool
) -> reconcile.Outcome:
    """One reconcile on what exists: listed from the API the first time after start-up,
    from the watch cache afterwards. A function of its own so that the decoded children
    (about 100 KB per tenant) are freed when it returns, not kept by the worker while it
    sleeps: at 500 tenants that was the largest part of the operator's memory."""
    if seeded:
        state = Runtime.cache.state(name, namespace)
    else:
        state = await reconcile.list_state(
            Runtime.client(), namespace=namespace, labels={LABEL_TENANT: name}
        )
        Runtime.cache.seed(name, state)
    return await reconcile.reconcile(
        Runtime.client(),
        raw,
        Runtime.settings,
        previous,
        state,
        lambda: Runtime.cache.state(name, namespace),
        _record,
        failed=Runtime.failed.of(name),
    )


async def _plan_refusal(
    name: str, raw: dict[str, Any], by_org: kopf.Index[str, tuple[str, str]]
) -> str | None:
    """Why the Tenant does not fit its organisation's plan, or None (admission.py)."""
    org = (raw["metadata"].get("labels") or {}).get(ORG_LABEL)
    if Runtime.limits is None or not org:
        return None
    limits = await Runtime.limits.get(org)
    if limits is None:
        return None
    model = normalize.tenant_model(raw, images=Runtime.settings.images)
    position = admission.rank(name, by_org.get(org, []))
    return admission.violation(limits, model, position=position)


async def _refuse(body: kopf.Body, raw: dict[str, Any], message: str, *, reason: str) -> None:
    """Record the refusal in the status (and an Event) when it is news; no other write."""
    current = reconcile.comparable(raw.get("status")) or {}
    status = observe.refused(
        current,
        reason=reason,
        message=message,
        generation=int(raw["metadata"].get("generation") or 0),
    )
    if observe.same(current, status):
        return
    await Runtime.client().patch_status(
        f"{GROUP}/{VERSION}", "Tenant", raw["metadata"]["name"], status
    )
    kopf.warn(body, reason=reason, message=message)


def invalid_spec(err: ValidationError) -> str:
    """A pydantic error as the API server would word it: the field, then what is wrong."""
    parts = []
    for e in err.errors(include_url=False):
        where = ".".join(str(p) for p in ("spec", *e["loc"]))
        what = str(e["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {what}")
    return "; ".join(parts)[:2000]


def _backoff(failures_in_a_row: int) -> float:
    """5 s after the first failure, doubling to 5 minutes."""
    return float(min(5 * 2 ** max(failures_in_a_row - 1, 0), 300))


def _slot() -> contextlib.AbstractAsyncContextManager[Any]:
    return Runtime.slots if Runtime.slots is not None else contextlib.nullcontext()


def _record(api_version: str, kind: str, obj: dict[str, Any], deleted: bool) -> None:
    Runtime.cache.record(api_version=api_version, kind=kind, obj=obj, deleted=deleted)


async def _report_error(
    body: kopf.Body, name: str, raw: dict[str, Any], reason: str, message: str
) -> None:
    """Show a failing reconcile in the status (Degraded, with the reason) and, when it is
    news, in a Warning event; best effort."""
    current = raw.get("status") or {}
    before: dict[str, Any] = next(
        (c for c in current.get("conditions") or [] if c.get("type") == "Degraded"), {}
    )
    news = (before.get("status"), before.get("reason"), before.get("message")) != (
        "True",
        reason,
        message,
    )
    status = observe.with_condition(
        current,
        observe.Cond("Degraded", True, reason, message),
        generation=int(raw["metadata"].get("generation") or 0),
    )
    if not news:
        return
    status["phase"] = "Degraded"
    kopf.warn(body, reason=reason, message=message)
    try:
        await Runtime.client().patch_status(f"{GROUP}/{VERSION}", "Tenant", name, status)
    except Exception:  # the API itself may be what is failing
        log.warning("could not report the reconcile error of %s in its status", name)


async def _wait(trigger: asyncio.Event, stopped: kopf.DaemonStopped, seconds: float) -> None:
    """Sleep until woken, stopped, or ``seconds`` pass."""
    waiters = [asyncio.ensure_future(trigger.wait()), asyncio.ensure_future(stopped.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


@kopf.on.delete(GROUP, VERSION, "tenants")
async def tenant_deleted(name: str, body: kopf.Body, retry: int, **_: Any) -> None:
    settings = Runtime.settings
    for ev in await finalize.finalize(
        Runtime.client(),
        body=dict(body),
        s3=settings.s3,
        retry=retry,
        max_retries=settings.delete_retries,
    ):
        (kopf.warn if ev.warning else kopf.info)(body, reason=ev.reason, message=ev.message)
    Runtime.triggers.pop(name, None)
    Runtime.cache.forget(name)
    Runtime.failed.forget(name)


# -- usage for billing --------------------------------------------------------------------
@kopf.timer(
    GROUP,
    VERSION,
    "tenants",
    interval=USAGE_INTERVAL,
    initial_delay=USAGE_INTERVAL,
    idle=None,
    when=lambda meta, **_: bool((meta.get("labels") or {}).get(ORG_LABEL)),
)
async def tenant_usage(
    body: kopf.Body, meta: kopf.Meta, status: kopf.Status, logger: kopf.Logger, **_: Any
) -> None:
    """Report host time and sampled storage to the organisation's billing."""
    settings = Runtime.settings
    if not (settings.controlplane_url and settings.internal_token):
        return
    try:
        model = normalize.tenant_model(dict(body), images=settings.images)
    except ValidationError:  # its worker shows why (InvalidSpec); nothing to meter
        logger.warning("usage of %s not reported: its spec is invalid", meta.get("name"))
        return
    storage = None
    if (status.get("schema") or {}).get("database"):
        try:
            async with connect.session(
                Runtime.client(), model, override=settings.clickhouse_override, scoped=False
            ) as client:
                if client is not None:
                    storage = await usage.storage_of(client, model.database)
        except ClickHouseError:
            storage = None
    batch = usage.events(
        model=model,
        uid=str(meta.get("uid")),
        status=dict(status),
        storage_bytes=storage,
        now=dt.datetime.now(dt.UTC),
        interval=USAGE_INTERVAL,
    )
    try:
        code = await usage.report(
            url=settings.controlplane_url,
            token=settings.internal_token,
            org_id=str(model.org_id),
            batch=batch,
        )
    except (OSError, TimeoutError) as err:  # aiohttp's errors are OSErrors
        raise kopf.TemporaryError(f"usage report failed: {err}", delay=30) from err
    if code >= 500:
        raise kopf.TemporaryError(f"usage report refused: HTTP {code}", delay=30)
    if code >= 300:
        logger.warning("usage report of %s refused: HTTP %d", model.name, code)


# -- children: wake the owning tenant's worker ------------------------------------------
# Watched by watch.py's own list-then-watch loops (not kopf: see watch.py for why), by
# the operator's label, into the cache; each change wakes the owning tenant's worker.
CHILDREN = (
    watch.Kind("apps/v1", "StatefulSet", "statefulsets"),
    watch.Kind("apps/v1", "Deployment", "deployments"),
    watch.Kind("v1", "Service", "services"),
    watch.Kind("v1", "ConfigMap", "configmaps"),
    watch.Kind("v1", "Secret", "secrets"),
    watch.Kind("v1", "ServiceAccount", "serviceaccounts"),
    watch.Kind("v1", "ResourceQuota", "resourcequotas"),
    watch.Kind("v1", "LimitRange", "limitranges"),
    watch.Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    watch.Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    watch.Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    watch.Kind("batch/v1", "CronJob", "cronjobs"),
    watch.Kind("v1", "Namespace", "namespaces"),
)


# Events about the tenants' pods and volumes (failures.py): one watch per selector, as
# a field selector cannot ask for several reasons at once.
EVENTS = watch.Kind("v1", "Event", "events")


def _wake(tenants: set[str] | str | None) -> None:
    for tenant in [tenants] if isinstance(tenants, str) else tenants or ():
        if tenant in Runtime.triggers:
            Runtime.triggers[tenant].set()


def _child_watch(kind: watch.Kind, ready: asyncio.Event) -> Coroutine[Any, Any, None]:
    def on_event(event_type: str, obj: dict[str, Any]) -> None:
        _wake(
            Runtime.cache.observe(
                api_version=kind.api_version,
                kind=kind.kind,
                obj=obj,
                deleted=event_type == "DELETED",
            )
        )

    def on_relist(objs: list[dict[str, Any]]) -> None:
        _wake(Runtime.cache.relist(api_version=kind.api_version, kind=kind.kind, objs=objs))

    return watch.run(
        Runtime.client().http,
        kind,
        f"{LABEL_MANAGED_BY}={MANAGED_BY}",
        on_event=on_event,
        on_relist=on_relist,
        ready=ready,
    )


def _event_watch(field_selector: str, ready: asyncio.Event) -> Coroutine[Any, Any, None]:
    def on_event(event_type: str, obj: dict[str, Any]) -> None:
        if event_type != "DELETED":  # an expired Event does not resolve anything
            _wake(Runtime.failed.observe(obj))

    def on_relist(objs: list[dict[str, Any]]) -> None:
        _wake(Runtime.failed.relist(objs))

    return watch.run(
        Runtime.client().http,
        EVENTS,
        "",
        on_event=on_event,
        on_relist=on_relist,
        ready=ready,
        field_selector=field_selector,
    )


async def _start_child_watches() -> None:
    """Start one watch per child kind and per kind of event; return once each has
    listed (cache filled)."""
    readiness = []
    for kind in CHILDREN:
        ready = asyncio.Event()
        readiness.append(ready)
        Runtime.watches.append(asyncio.create_task(_child_watch(kind, ready)))
    for selector in failures.SELECTORS:
        ready = asyncio.Event()
        readiness.append(ready)
        Runtime.watches.append(asyncio.create_task(_event_watch(selector, ready)))
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readiness)), timeout=120)


# -- Dashboard --------------------------------------------------------------------------
@kopf.on.resume(GROUP, VERSION, "dashboards")
@kopf.on.create(GROUP, VERSION, "dashboards")
@kopf.on.update(GROUP, VERSION, "dashboards", field="spec")
async def dashboard_changed(
    name: str,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    body: kopf.Body,
    retry: int,
    **_: Any,
) -> None:
    """Validate every panel against the tenant's schema; keep materialized views.

    Whatever goes wrong ends up on the Dashboard: its Ready condition says why (with a
    Warning event when that is news) and the handler is retried with a backoff, or,
    for a spec the models refuse, waits for the spec to change."""
    try:
        retry_in = await _dashboard_reconcile(name, spec, meta, status, patch, body)
    except Exception as err:  # every failure becomes a condition, then a kopf error
        await _dashboard_failed(name, meta, status, body, err, retry=retry)
    if retry_in is not None:
        tenant = spec.get("tenantRef", {}).get("name")
        raise kopf.TemporaryError(f"tenant {tenant} is not Ready yet", delay=retry_in)


async def _dashboard_reconcile(
    name: str,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    body: kopf.Body,
) -> float | None:
    """One reconcile of a Dashboard; the delay before looking again, if it must be."""
    dashboard = DashboardSpec.model_validate(dict(spec))
    kube = Runtime.client()
    tenant_name = dashboard.tenant_ref.name
    previous_panels = list(status.get("panels") or [])
    tenant_body = await kube.get(f"{GROUP}/{VERSION}", "Tenant", tenant_name)
    retry_in: float | None = None
    if tenant_body is None or not dashboards.tenant_ready(tenant_body.get("status")):
        outcome = dashboards.unavailable(
            tenant_name=tenant_name, tenant_exists=tenant_body is not None, previous=previous_panels
        )
        retry_in = 15.0
    else:
        outcome = await _dashboard_outcome(kube, tenant_body, name, dashboard, previous_panels)
    new_status = outcome.status(generation=meta.get("generation"), previous=dict(status))
    patch.status.update(new_status)
    news = _ready_of(new_status) != _ready_of(dict(status))
    for notice in outcome.notices:
        if retry_in is None or news:  # waiting for the tenant: said once, not every retry
            (kopf.warn if notice.warning else kopf.info)(
                body, reason=notice.reason, message=notice.message
            )
    return retry_in


def _ready_of(status: dict[str, Any]) -> tuple[Any, ...]:
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            return (cond.get("status"), cond.get("reason"), cond.get("message"))
    return ()


async def _dashboard_failed(
    name: str,
    meta: kopf.Meta,
    status: kopf.Status,
    body: kopf.Body,
    err: Exception,
    *,
    retry: int,
) -> NoReturn:
    """Put a failed Dashboard reconcile on the Dashboard, then raise the kopf error that
    schedules the next attempt."""
    permanent = False
    if isinstance(err, ValidationError):
        reason, message, permanent = "InvalidSpec", invalid_spec(err), True
    elif isinstance(err, TenantUnusable):
        reason, message = "TenantInvalid", str(err)
    elif isinstance(err, dashboards.DataPlaneUnavailable | ClickHouseError):
        reason, message = "DataPlaneUnavailable", f"the tenant's ClickHouse cannot answer: {err}"
    else:
        log.exception("reconcile of dashboard %s failed", name)
        reason, message = "ReconcileError", f"{type(err).__name__}: {err}"
    message = message[:2000]
    generation = int(meta.get("generation") or 0)
    current = dict(status)
    new_status = observe.with_condition(
        current, observe.Cond("Ready", False, reason, message), generation=generation
    )
    if permanent:
        new_status = observe.with_condition(
            new_status, observe.Cond("Valid", False, reason, message), generation=generation
        )
    new_status["observedGeneration"] = generation
    if _ready_of(new_status) != _ready_of(current):
        kopf.warn(body, reason=reason, message=message)
        try:
            await Runtime.client().patch_status(f"{GROUP}/{VERSION}", "Dashboard", name, new_status)
        except Exception:  # the API itself may be what is failing
            log.warning("could not report the failure of dashboard %s in its status", name)
    if permanent:
        raise kopf.PermanentError(message) from err
    raise kopf.TemporaryError(message, delay=_backoff(retry + 1)) from err


class TenantUnusable(Exception):
    """The Dashboard's Tenant cannot be used (its spec is one the operator refuses)."""


async def _dashboard_outcome(
    kube: Kube,
    tenant_body: dict[str, Any],
    name: str,
    dashboard: DashboardSpec,
    previous: list[Any],
) -> dashboards.DashboardOutcome:
    settings = Runtime.settings
    try:
        model = normalize.tenant_model(tenant_body, images=settings.images)
    except ValidationError as err:  # a stack that ran before its spec became invalid
        raise TenantUnusable(
            f"Tenant {dashboard.tenant_ref.name} has a spec the operator refuses: "
            + invalid_spec(err)
        ) from err
    async with connect.session(
        kube, model, override=settings.clickhouse_override, scoped=True
    ) as client:
        if client is None:
            raise dashboards.DataPlaneUnavailable("the tenant's credentials are not there yet")
        return await dashboards.reconcile_dashboard(
            client, tenant=model, name=name, spec=dashboard, previous=previous
        )


@kopf.on.delete(GROUP, VERSION, "dashboards")
async def dashboard_deleted(name: str, spec: kopf.Spec, retry: int, **_: Any) -> None:
    """Drop the dashboard's materialized views (a few retries, then let it go)."""
    kube = Runtime.client()
    tenant_body = await kube.get(f"{GROUP}/{VERSION}", "Tenant", spec["tenantRef"]["name"])
    if tenant_body is None or not dashboards.tenant_ready(tenant_body.get("status")):
        return  # no ClickHouse to clean (or it is going away with its tenant)
    settings = Runtime.settings
    try:
        model = normalize.tenant_model(tenant_body, images=settings.images)
    except ValidationError:
        log.warning("left the views of dashboard %s in place: its Tenant's spec is invalid", name)
        return
    try:
        async with connect.session(
            kube, model, override=settings.clickhouse_override, scoped=False
        ) as client:
            if client is None:
                return
            await dashboards.drop_dashboard(client, tenant=model, name=name)
    except ClickHouseError as err:
        if retry < 3:
            raise kopf.TemporaryError(f"dropping views: {err}", delay=5) from err
        log.warning("left the views of dashboard %s in place: %s", name, err)

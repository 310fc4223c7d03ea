"""kopf handlers: decorators only. Each unpacks kopf's arguments, takes the process's
``Runtime`` from kopf's memo, and calls the module that does the work:

- start-up and clean-up: runtime.py (the shared state), children.py (the watches);
- a Tenant: its worker (worker.py), its deletion (finalize.py), its usage (metering.py);
- a Dashboard: dashboard_worker.py;
- a Restore: restore_worker.py (its Job, followed to its end).
"""

from __future__ import annotations

from typing import Any, cast

import kopf

from tenantry import contract
from tenantry.api import GROUP, VERSION
from tenantry.api.resources import DASHBOARDS, RESTORES, TENANTS
from tenantry_operator import (
    children,
    dashboard_worker,
    finalize,
    metering,
    metrics,
    restore_worker,
    worker,
)
from tenantry_operator.runtime import Runtime
from tenantry_operator.settings import Settings

# kopf takes a timer's interval when the handler is registered, at import: this one
# setting is read then (the rest at startup, from the same model).
USAGE_INTERVAL = Settings.from_env().usage_interval_seconds


HOLD = contract.ANNOTATION_RESTORE_HOLD


def _rt(memo: kopf.Memo) -> Runtime:
    return cast(Runtime, memo.runtime)


@kopf.on.startup()
async def startup(memo: kopf.Memo, **_: Any) -> None:
    rt = Runtime.start(Settings.from_env())
    memo.runtime = rt
    if rt.settings.metrics_listen:
        memo.metrics_runner = await metrics.serve(rt.metrics, rt.settings.metrics_listen)
    await children.start(rt)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    if "metrics_runner" in memo:
        await memo.metrics_runner.cleanup()
    if "runtime" in memo:
        await _rt(memo).stop()


# -- Tenant ---------------------------------------------------------------------------
@kopf.index(GROUP, VERSION, TENANTS)
def tenants_by_org(name: str, meta: kopf.Meta, **_: Any) -> dict[str, tuple[str, str]] | None:
    """Live Tenants per organisation, (creationTimestamp, name): the plan's tenant count."""
    org = (meta.get("labels") or {}).get(contract.LABEL_ORG)
    if not org or meta.get("deletionTimestamp"):
        return None
    return {org: (str(meta.get("creationTimestamp") or ""), name)}


@kopf.on.create(GROUP, VERSION, TENANTS)
@kopf.on.update(GROUP, VERSION, TENANTS, field="spec")
# A restore's hold is an annotation (restore_hold): woken once kopf's body has it, so
# the worker never reconciles a body older than the hold it was woken for.
@kopf.on.update(GROUP, VERSION, TENANTS, field=("metadata", "annotations", HOLD))
async def tenant_spec_changed(name: str, memo: kopf.Memo, **_: Any) -> None:
    _rt(memo).trigger(name).set()


@kopf.daemon(
    GROUP,
    VERSION,
    TENANTS,
    cancellation_timeout=10.0,
    when=lambda meta, **_: not meta.get("deletionTimestamp"),
)
async def tenant_worker(
    name: str,
    body: kopf.Body,
    stopped: kopf.DaemonStopped,
    logger: kopf.Logger,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    by_org: worker.Index = kwargs["tenants_by_org"]  # the index above
    await worker.run(_rt(memo), name, body, stopped, logger, by_org)


@kopf.on.delete(GROUP, VERSION, TENANTS)
async def tenant_deleted(name: str, body: kopf.Body, retry: int, memo: kopf.Memo, **_: Any) -> None:
    rt = _rt(memo)
    for ev in await finalize.finalize(
        rt.kube,
        body=dict(body),
        s3=rt.settings.s3,
        retry=retry,
        max_retries=rt.settings.delete_retries,
    ):
        (kopf.warn if ev.warning else kopf.info)(body, reason=ev.reason, message=ev.message)
    rt.forget(name)


@kopf.timer(
    GROUP,
    VERSION,
    TENANTS,
    interval=USAGE_INTERVAL,
    initial_delay=USAGE_INTERVAL,
    idle=None,
    when=lambda meta, **_: bool((meta.get("labels") or {}).get(contract.LABEL_ORG)),
)
async def tenant_usage(
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    logger: kopf.Logger,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Report host time and sampled storage to the organisation's billing."""
    await metering.report(_rt(memo), body, meta, status, logger, interval=USAGE_INTERVAL)


# -- Dashboard --------------------------------------------------------------------------
@kopf.on.resume(GROUP, VERSION, DASHBOARDS)
@kopf.on.create(GROUP, VERSION, DASHBOARDS)
@kopf.on.update(GROUP, VERSION, DASHBOARDS, field="spec")
async def dashboard_changed(
    body: kopf.Body, patch: kopf.Patch, retry: int, memo: kopf.Memo, **_: Any
) -> None:
    """Validate every panel against the tenant's schema; keep materialized views."""
    rt = _rt(memo)
    try:
        retry_in = await dashboard_worker.reconcile(rt, body, patch)
    except Exception as err:  # every failure becomes a condition, then a kopf error
        await dashboard_worker.failed(rt, body, err, retry=retry)
    if retry_in is not None:
        tenant = body.spec.get("tenantRef", {}).get("name")
        raise kopf.TemporaryError(f"tenant {tenant} is not Ready yet", delay=retry_in)


@kopf.on.delete(GROUP, VERSION, DASHBOARDS)
async def dashboard_deleted(
    name: str, spec: kopf.Spec, retry: int, memo: kopf.Memo, **_: Any
) -> None:
    """Drop the dashboard's materialized views (a few retries, then let it go)."""
    await dashboard_worker.drop(_rt(memo), name, spec, retry)


# -- Restore ----------------------------------------------------------------------------
@kopf.on.resume(GROUP, VERSION, RESTORES)
@kopf.on.create(GROUP, VERSION, RESTORES)
async def restore_requested(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """Create the restore Job once the target is there, then follow it to its end."""
    again = await restore_worker.reconcile(_rt(memo), body, patch)
    if again is not None:
        raise kopf.TemporaryError("restore not finished", delay=again)


@kopf.on.delete(GROUP, VERSION, RESTORES, optional=True)
async def restore_deleted(spec: kopf.Spec, memo: kopf.Memo, **_: Any) -> None:
    """A Restore deleted before it ended may leave its hold on the target: wake the
    target's worker, which drops a hold whose Restore is gone (restore_hold)."""
    tenant = spec.get("tenant")
    if tenant:
        _rt(memo).wake(str(tenant))

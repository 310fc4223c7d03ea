"""kopf handlers: thin. They unpack kopf's arguments and call the reconcile steps.

Each Tenant has one worker (a kopf daemon), so a tenant is never reconciled twice at
once. The worker sleeps until something relevant happens: the Tenant's spec changes,
one of its children changes (watched below, by label), or the periodic resync is due.
A deleted or hand-edited child therefore triggers a reconcile within moments.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
from pydantic import ValidationError

from tenantry.api import GROUP, VERSION
from tenantry.api.dashboard import DashboardSpec
from tenantry_operator import finalize, observe, reconcile
from tenantry_operator.kube import Kube
from tenantry_operator.model import LABEL_MANAGED_BY, LABEL_TENANT, MANAGED_BY
from tenantry_operator.observe import now
from tenantry_operator.settings import Settings

log = logging.getLogger(__name__)


class Runtime:
    """Process-wide state: the API client, settings and the per-tenant wake-up events."""

    kube: Kube | None = None
    settings: Settings = Settings()
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
    Runtime.client()


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    if Runtime.kube is not None:
        await Runtime.kube.close()
        Runtime.kube = None


# -- Tenant ---------------------------------------------------------------------------
@kopf.on.create(GROUP, VERSION, "tenants")
@kopf.on.update(GROUP, VERSION, "tenants", field="spec")
def tenant_spec_changed(name: str, **_: Any) -> None:
    Runtime.trigger(name).set()


@kopf.daemon(
    GROUP,
    VERSION,
    "tenants",
    cancellation_timeout=10.0,
    when=lambda meta, **_: not meta.get("deletionTimestamp"),
)
async def tenant_worker(
    name: str, body: kopf.Body, stopped: kopf.DaemonStopped, logger: kopf.Logger, **_: Any
) -> None:
    trigger = Runtime.trigger(name)
    settings = Runtime.settings
    last_status: dict[str, Any] | None = None
    last_generation = -1
    while not stopped:
        trigger.clear()
        raw = {
            "metadata": dict(body.metadata),
            "spec": dict(body.spec),
            "status": dict(body.status),
        }
        generation = int(raw["metadata"].get("generation") or 0)
        previous = last_status if generation == last_generation else None
        try:
            outcome = await reconcile.reconcile(Runtime.client(), raw, settings, previous)
        except ValidationError as err:
            kopf.warn(body, reason="InvalidSpec", message=str(err.errors(include_url=False)))
            await _wait(trigger, stopped, settings.resync_seconds)
            continue
        except Exception as err:  # keep the worker alive; retry soon
            logger.exception("reconcile of %s failed", name)
            message = f"{type(err).__name__}: {err}"[:1000]
            kopf.warn(body, reason="ReconcileError", message=message)
            await _report_error(name, raw, message)
            last_status = None
            await _wait(trigger, stopped, 5.0)
            continue
        last_status, last_generation = outcome.status, generation
        for ev in outcome.events:
            (kopf.warn if ev.warning else kopf.info)(body, reason=ev.reason, message=ev.message)
        delay = settings.resync_seconds if outcome.converged else settings.busy_recheck_seconds
        await _wait(trigger, stopped, delay)


async def _report_error(name: str, raw: dict[str, Any], message: str) -> None:
    """Show a failing reconcile in the status (Degraded/ReconcileError), best effort."""
    status = observe.with_condition(
        raw.get("status") or {},
        observe.Cond("Degraded", True, "ReconcileError", message),
        generation=int(raw["metadata"].get("generation") or 0),
    )
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


# -- children: wake the owning tenant's worker ------------------------------------------
_CHILDREN = (
    ("apps", "v1", "statefulsets"),
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("", "v1", "configmaps"),
    ("", "v1", "secrets"),
    ("", "v1", "serviceaccounts"),
    ("", "v1", "resourcequotas"),
    ("", "v1", "limitranges"),
    ("networking.k8s.io", "v1", "networkpolicies"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("batch", "v1", "cronjobs"),
    ("", "v1", "namespaces"),
)


def _child_changed(labels: kopf.Labels, **_: Any) -> None:
    tenant = labels.get(LABEL_TENANT)
    if tenant and tenant in Runtime.triggers:
        Runtime.triggers[tenant].set()


for _group, _version, _plural in _CHILDREN:
    kopf.on.event(_group, _version, _plural, labels={LABEL_MANAGED_BY: MANAGED_BY})(_child_changed)


# -- Dashboard (reconciled in the data-plane work; validated here) ----------------------
@kopf.on.resume(GROUP, VERSION, "dashboards")
@kopf.on.create(GROUP, VERSION, "dashboards")
@kopf.on.update(GROUP, VERSION, "dashboards")
def dashboard_changed(
    spec: kopf.Spec, meta: kopf.Meta, patch: kopf.Patch, logger: kopf.Logger, **_: Any
) -> None:
    try:
        dashboard = DashboardSpec.model_validate(dict(spec))
    except ValidationError as err:
        raise kopf.PermanentError(f"invalid spec: {err.errors(include_url=False)}") from err
    logger.info("dashboard %s observed (%d panels)", meta.get("name"), len(dashboard.panels))
    generation = meta.get("generation")
    patch.status["observedGeneration"] = generation
    patch.status["conditions"] = [
        {
            "type": "Ready",
            "status": "Unknown",
            "reason": "Observed",
            "message": "spec accepted; panel validation needs the tenant's ClickHouse",
            "observedGeneration": generation,
            "lastTransitionTime": now(),
        }
    ]

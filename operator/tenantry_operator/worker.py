"""A Tenant's worker: one loop per Tenant (a kopf daemon, handlers.py), so a tenant is
never reconciled twice at once.

The worker sleeps until something relevant happens: the Tenant's spec changes, one of
its children changes (children.py wakes it), or the periodic resync is due. A deleted
or hand-edited child therefore triggers a reconcile within moments. Every failure of a
reconcile ends up on the Tenant (a Degraded condition with the reason, and a Warning
event when that is news) and is retried with a backoff; the worker itself never dies
of one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import kopf
from pydantic import ValidationError

from tenantry import contract
from tenantry.api import GROUP, VERSION
from tenantry.backoff import Backoff
from tenantry_operator import apply, metrics, normalize, observe, org_limits, reconcile
from tenantry_operator.conditions import Cond, find, set_condition
from tenantry_operator.runtime import Runtime
from tenantry_operator.settings import Settings

log = logging.getLogger(__name__)
loop_time = time.monotonic
DEBOUNCE_SECONDS = 0.05
Index = kopf.Index[str, tuple[str, str]]  # live Tenants per organisation (handlers.py)


async def run(
    rt: Runtime,
    name: str,
    body: kopf.Body,
    stopped: kopf.DaemonStopped,
    logger: kopf.Logger,
    by_org: Index,
) -> None:
    """Reconcile ``name`` whenever woken, until stopped."""
    trigger = rt.trigger(name)
    settings = rt.settings
    last_status: dict[str, Any] | None = None
    last_generation = -1
    first = True
    retries = 0  # schema steps ClickHouse refused in a row
    failures_in_a_row = 0
    namespace = normalize.namespace_of(name)
    seconds = rt.metrics.reconcile_seconds
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
        rt.metrics.observe(name, raw["status"])
        started = loop_time()
        try:
            refusal = await _plan_refusal(rt, name, raw, by_org)
            if refusal is not None:
                await _refuse(rt, body, raw, refusal, reason=org_limits.REASON)
                seconds.labels("refused").observe(loop_time() - started)
                last_status = None
                await _wait(trigger, stopped, settings.plan_recheck_seconds)
                continue
            rt.metrics.waiting.inc()
            try:
                await rt.slots.acquire()
            finally:
                rt.metrics.waiting.dec()
            try:
                with rt.metrics.in_flight.track_inprogress():
                    outcome = await _reconcile_once(
                        rt, name, namespace, raw, previous, seeded=not first
                    )
            finally:
                rt.slots.release()
            first = False
        except ValidationError as err:
            # The API server accepted what the model refuses (a CRD older than the
            # models, or a rule CEL cannot express): refused like a plan violation.
            await _refuse(rt, body, raw, invalid_spec(err), reason="InvalidSpec")
            seconds.labels("refused").observe(loop_time() - started)
            last_status = None
            await _wait(trigger, stopped, settings.resync_seconds)
            continue
        except apply.Refused as err:
            # Kubernetes refused one of the children (an admission policy, a quota):
            # its words in the status, retried with a backoff.
            failures_in_a_row += 1
            seconds.labels("kube_refused").observe(loop_time() - started)
            logger.warning("reconcile of %s: %s", name, err.message)
            await _report_error(rt, body, name, raw, err.reason, err.message)
            last_status = None
            await _wait(trigger, stopped, ERROR_BACKOFF.delay(failures_in_a_row))
            continue
        except Exception as err:  # on the Tenant, then retried with a backoff
            failures_in_a_row += 1
            seconds.labels("error").observe(loop_time() - started)
            logger.exception("reconcile of %s failed", name)
            message = f"{type(err).__name__}: {err}"[:1000]
            await _report_error(rt, body, name, raw, "ReconcileError", message)
            last_status = None
            await _wait(trigger, stopped, ERROR_BACKOFF.delay(failures_in_a_row))
            continue
        failures_in_a_row = 0
        seconds.labels(metrics.outcome_of(outcome.converged, outcome.retry)).observe(
            loop_time() - started
        )
        if outcome.retry:
            rt.metrics.schema_errors.inc()
        rt.metrics.observe(name, outcome.status)
        last_status, last_generation = outcome.status, generation
        for ev in outcome.events:
            (kopf.warn if ev.warning else kopf.info)(body, reason=ev.reason, message=ev.message)
        delay, retries = next_wait(outcome, settings, retries)
        if outcome.recheck_in is not None:
            delay = min(delay, outcome.recheck_in)
        await _wait(trigger, stopped, delay)


def next_wait(outcome: reconcile.Outcome, settings: Settings, retries: int) -> tuple[float, int]:
    """How long the worker sleeps unless woken, and how many schema retries in a row
    there have been after that.

    Converged: the resync. Waiting on what a watch announces (children becoming Ready):
    the busy recheck, a safety net. Waiting on what no watch announces (``retry``: the
    tenant's ClickHouse did not answer the schema step): a backoff, 1 s doubling up
    to ``retry_max_seconds`` (``TENANTRY_RETRY_MAX_SECONDS``), never longer than the
    busy recheck, started again by any other outcome. Before it, that wait was the
    30 s busy recheck: each refused attempt cost 30 s whatever ClickHouse did meanwhile,
    so two of them (start-up, a loaded machine) kept a new tenant from Ready for a
    minute."""
    if outcome.retry:
        schedule = Backoff(first=settings.retry_first_seconds, cap=settings.retry_max_seconds)
        return min(schedule.delay(retries + 1), settings.busy_recheck_seconds), retries + 1
    if outcome.converged:
        return settings.resync_seconds, 0
    return settings.busy_recheck_seconds, 0


async def _reconcile_once(
    rt: Runtime, name: str, namespace: str, raw: dict[str, Any], previous: Any, *, seeded: bool
) -> reconcile.Outcome:
    """One reconcile on what exists: listed from the API the first time after start-up,
    from the watch cache afterwards. A function of its own so that the decoded children
    (about 100 KB per tenant) are freed when it returns, not kept by the worker while it
    sleeps: at 500 tenants that was the largest part of the operator's memory."""
    if seeded:
        state = rt.cache.state(name, namespace)
    else:
        state = await reconcile.list_state(
            rt.kube, namespace=namespace, labels={contract.LABEL_TENANT: name}
        )
        rt.cache.seed(name, state)
    return await reconcile.reconcile(
        rt.kube,
        raw,
        rt.settings,
        previous,
        state,
        lambda: rt.cache.state(name, namespace),
        rt.record,
        failed=rt.failed.of(name),
    )


async def _plan_refusal(rt: Runtime, name: str, raw: dict[str, Any], by_org: Index) -> str | None:
    """Why the Tenant does not fit its organisation's plan, or None (org_limits.py)."""
    org = (raw["metadata"].get("labels") or {}).get(contract.LABEL_ORG)
    if rt.limits is None or not org:
        return None
    limits = await rt.limits.get(org)
    if limits is None:
        return None
    model = normalize.tenant_model(raw, images=rt.settings.images)
    position = org_limits.rank(name, by_org.get(org, []))
    return org_limits.violation(limits, model, position=position)


async def _refuse(
    rt: Runtime, body: kopf.Body, raw: dict[str, Any], message: str, *, reason: str
) -> None:
    """Record the refusal in the status (and an Event) when it is news; no other write."""
    current = reconcile.comparable(raw.get("status")) or {}
    status = observe.refused(
        current,
        reason=reason,
        message=message,
        generation=int(raw["metadata"].get("generation") or 0),
    )
    rt.metrics.observe(raw["metadata"]["name"], status)  # now, not at the next wake-up
    if observe.same(current, status):
        return
    await rt.kube.patch_status(f"{GROUP}/{VERSION}", "Tenant", raw["metadata"]["name"], status)
    kopf.warn(body, reason=reason, message=message)


def invalid_spec(err: ValidationError) -> str:
    """A pydantic error as the API server would word it: the field, then what is wrong."""
    parts = []
    for e in err.errors(include_url=False):
        where = ".".join(str(p) for p in ("spec", *e["loc"]))
        what = str(e["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {what}")
    return "; ".join(parts)[:2000]


# After a failed reconcile (the worker) or a failed Dashboard handler (kopf retries it):
# 5 s after the first failure, doubling to 5 minutes.
ERROR_BACKOFF = Backoff(first=5, cap=300)


async def _report_error(
    rt: Runtime, body: kopf.Body, name: str, raw: dict[str, Any], reason: str, message: str
) -> None:
    """Show a failing reconcile in the status (Degraded, with the reason) and, when it is
    news, in a Warning event; best effort."""
    current = raw.get("status") or {}
    before = find(current.get("conditions"), "Degraded") or {}
    news = (before.get("status"), before.get("reason"), before.get("message")) != (
        "True",
        reason,
        message,
    )
    if not news:
        return
    status = {
        "conditions": set_condition(
            current.get("conditions"),
            Cond("Degraded", True, reason, message),
            generation=int(raw["metadata"].get("generation") or 0),
        ),
        "phase": "Degraded",
    }
    rt.metrics.observe(name, {**current, **status})  # now, not at the next wake-up
    kopf.warn(body, reason=reason, message=message)
    try:
        await rt.kube.patch_status(f"{GROUP}/{VERSION}", "Tenant", name, status)
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

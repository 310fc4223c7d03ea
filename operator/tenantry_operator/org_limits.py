"""Plan limits: the operator's own check that a Tenant fits its organisation's plan.

The control plane checks limits before it writes a Tenant CR, but CRs can also be
written with kubectl, and an organisation can move to a smaller plan. So before a
reconcile the operator checks a Tenant labelled with an organisation
(``tenantry.io/org-id``) against that organisation's limits, read from the control
plane (``GET /internal/v1/orgs/{org}/limits``, internal token) and cached briefly.

A Tenant that does not fit is refused: nothing of it is created or changed (a stack
that already runs is left running, its data untouched), its status says why
(``Degraded``/``PlanLimitExceeded``; phase ``Refused`` when nothing exists yet) and a
warning Event is recorded. It is looked at again on a short timer, so an upgrade of the
plan or a smaller spec lets it through without anyone touching it.

Tenants without the label (a platform admin's own) are not checked. When the control
plane cannot be reached, the last known limits are used; with none known the Tenant is
admitted (a control-plane outage must not stop running stacks from being reconciled).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from tenantry import plan_limits
from tenantry.internal_api import OrgLimitsOut
from tenantry.internal_client import InternalClient, Unavailable
from tenantry_operator.model import TenantModel

log = logging.getLogger(__name__)
REASON = "PlanLimitExceeded"


def rank(name: str, peers: Iterable[tuple[str, str]]) -> int:
    """How many of the organisation's Tenants came before ``name``.

    ``peers`` are (creationTimestamp, name) of the organisation's live Tenants; the
    oldest ones keep their place when there are more than the plan allows, so adding a
    Tenant never takes the place of one that was there first."""
    ordered = sorted(set(peers))
    for i, (_, peer) in enumerate(ordered):
        if peer == name:
            return i
    return len(ordered)


def violation(org: OrgLimitsOut, model: TenantModel, *, position: int) -> str | None:
    """Why ``model`` does not fit the organisation's limits (pure), or None: the shared
    rule (``tenantry.plan_limits``) on the model's resolved values.
    ``org``: the control plane's answer (``tenantry.internal_api``); ``position``: ``rank``."""
    ch = model.clickhouse
    ask = plan_limits.Ask(
        plan=model.plan, shards=ch.shards, replicas=ch.replicas, retention_days=model.retention_days
    )
    return plan_limits.violation(org.plan, org.limits, ask, position=position)


class LimitsSource:
    """Organisation limits from the control plane (the process's internal-API client),
    cached for ``ttl`` seconds."""

    def __init__(self, client: InternalClient, *, ttl: float) -> None:
        self._client = client
        self._ttl = ttl
        self._cache: dict[str, tuple[float, OrgLimitsOut | None]] = {}

    async def get(self, org_id: str) -> OrgLimitsOut | None:
        """The organisation's limits; None when unknown (admit)."""
        now = time.monotonic()
        cached = self._cache.get(org_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            found = await self._fetch(org_id)
        except Unavailable as err:  # unreachable, an error status, or a bad body
            log.warning("plan limits of org %s unavailable (%s); using the last known", org_id, err)
            found = cached[1] if cached is not None else None
            # Asked again only after ttl: an unreachable control plane must not cost
            # every reconcile of the organisation's tenants a timeout.
            self._cache[org_id] = (now, found)
            return found
        self._cache[org_id] = (now, found)
        return found

    async def _fetch(self, org_id: str) -> OrgLimitsOut | None:
        found = await self._client.org_limits(org_id)
        if found is None:  # no such organisation: nothing to check against
            log.warning("tenant labelled with unknown org %s: plan limits not checked", org_id)
        return found

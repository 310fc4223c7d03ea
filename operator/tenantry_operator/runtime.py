"""What the operator's handlers share in one process: the API client, the settings, the
children cache, the wake-up events of the tenants' workers, the plan limits.

One ``Runtime`` is made at start-up and kept in kopf's operator-level memo
(``memo.runtime``); kopf hands every handler a copy of that memo, so they all reach the
same instance. Nothing here is module-level or class-level state.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from tenantry.internal_client import InternalClient
from tenantry_operator import builders, failures, normalize, org_limits
from tenantry_operator.cache import ChildCache, dictionary_from
from tenantry_operator.kube import Kube
from tenantry_operator.metrics import OperatorMetrics
from tenantry_operator.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    kube: Kube
    cache: ChildCache
    slots: asyncio.Semaphore  # bounds concurrent reconciles
    internal: InternalClient | None = None  # the control plane's internal API, when set
    limits: org_limits.LimitsSource | None = None  # plan limits, when a control plane is set
    failed: failures.Failures = field(default_factory=failures.Failures)  # pods' warnings
    watches: list[asyncio.Task[None]] = field(default_factory=list)  # children.py's loops
    triggers: dict[str, asyncio.Event] = field(default_factory=dict)  # wake a tenant's worker
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)

    @classmethod
    def start(cls, settings: Settings) -> Runtime:
        internal = limits = None
        if settings.controlplane_url and settings.internal_token:
            internal = InternalClient(settings.controlplane_url, token=settings.internal_token)
            limits = org_limits.LimitsSource(internal, ttl=settings.plan_recheck_seconds)
        metrics = OperatorMetrics()
        kube = Kube.from_env()
        kube.on_write = metrics.write
        return cls(
            settings=settings,
            kube=kube,
            metrics=metrics,
            cache=ChildCache(dictionary=sample_children(settings)),
            slots=asyncio.Semaphore(settings.max_concurrent_reconciles),
            internal=internal,
            limits=limits,
        )

    def trigger(self, tenant: str) -> asyncio.Event:
        return self.triggers.setdefault(tenant, asyncio.Event())

    def wake(self, tenants: set[str] | str | None) -> None:
        """Wake the workers of these tenants (those that have one)."""
        for tenant in [tenants] if isinstance(tenants, str) else tenants or ():
            if tenant in self.triggers:
                self.triggers[tenant].set()

    def forget(self, tenant: str) -> None:
        self.triggers.pop(tenant, None)
        self.metrics.forget(tenant)
        self.cache.forget(tenant)
        self.failed.forget(tenant)

    def record(self, api_version: str, kind: str, obj: dict[str, Any], deleted: bool) -> None:
        """Write-through of our own writes into the children cache (``apply.Recorder``)."""
        self.cache.record(api_version=api_version, kind=kind, obj=obj, deleted=deleted)

    async def stop(self) -> None:
        for task in self.watches:
            task.cancel()
        await asyncio.gather(*self.watches, return_exceptions=True)
        self.watches.clear()
        await self.kube.close()
        if self.internal is not None:
            await self.internal.aclose()


def sample_children(settings: Settings) -> bytes:
    """The cache's compression dictionary: what a replicated tenant's children look like."""
    body = {"metadata": {"name": "sample"}, "spec": {"plan": "growth"}}
    return dictionary_from(builders.build(normalize.tenant_model(body, images=settings.images)))

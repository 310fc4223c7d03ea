"""ServiceAccounts, one per workload, with no API token mounted.

None of the tenant's pods talks to the Kubernetes API, so none gets credentials for
it; separate accounts still let a cluster admin grant one workload something later
(an IAM role for S3, say) without granting it to all. The keeper account exists only
while Keeper runs, like every other Keeper object.
"""

from __future__ import annotations

from tenantry_operator import model as m
from tenantry_operator.builders import common, keeper, render

COMPONENT = "rbac"
SERVICE_ACCOUNTS = ("clickhouse", "keeper", "redis", "ingestion")


def names(model: m.TenantModel) -> tuple[str, ...]:
    return tuple(n for n in SERVICE_ACCOUNTS if n != "keeper" or keeper.enabled(model))


def service_accounts(model: m.TenantModel) -> list[common.Manifest]:
    return [
        render.one(
            "rbac/serviceaccount.yaml.j2",
            metadata=common.metadata(model, name=name, component=COMPONENT),
        )
        for name in names(model)
    ]


def objects(model: m.TenantModel) -> list[common.Manifest]:
    return service_accounts(model)

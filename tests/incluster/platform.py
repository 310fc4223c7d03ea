"""What tests/incluster asks of the installed product (pods, rollouts, Tenants, the
tenant's ClickHouse through its Service, volumes). Installing it is the dev harness's
job (tenantry_dev/platform.py: ``python -m tenantry_dev platform install``, which the
suite's fixture runs)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tenantry_operator import apply
from tenantry_operator.model import MANAGED_BY

from tenantry import contract
from tenantry_dev.platform import NAMESPACE, RELEASE
from tests.support.kube import Kube
from tests.support.portforward import forward
from tests.support.wait import eventually, kubectl_timeout, scaled


def is_ready(pod: dict[str, Any]) -> bool:
    """Running, and every container of it started and Ready."""
    statuses = pod["status"].get("containerStatuses") or []
    return (
        pod["status"].get("phase") == "Running"
        and bool(statuses)
        and all(c.get("ready") for c in statuses)
    )


def ready_pods(kube: Kube, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
    args = ["pods", "-n", namespace] + (["-l", selector] if selector else [])
    return [p for p in kube.get(*args)["items"] if is_ready(p)]


def wait_rollout(kube: Kube, namespace: str, what: str, timeout: float = 300) -> None:
    eventually(
        lambda: (
            kube.try_run(
                "rollout", "status", what, "-n", namespace, f"--timeout={kubectl_timeout(30)}"
            ).code
            == 0
        ),
        timeout=timeout,
        what=f"{namespace}/{what} rolled out",
    )


def release_pods(kube: Kube, component: str) -> list[dict[str, Any]]:
    """The release's pods of ``component`` (operator, controlplane), deleted ones left out."""
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}"
    return [
        p
        for p in kube.get("pods", "-n", NAMESPACE, "-l", selector)["items"]
        if not p["metadata"].get("deletionTimestamp")
    ]


def clickhouse_password(kube: Kube, namespace: str) -> str:
    """The tenant's ClickHouse admin password, from the Secret the operator generated."""
    data = kube.get("secret", contract.CLICKHOUSE_SECRET, "-n", namespace)["data"]
    return base64.b64decode(data[contract.CLICKHOUSE_PASSWORD_KEYS["admin"]]).decode()


async def query(ch: httpx.AsyncClient, sql: str, password: str) -> str:
    """``sql`` through the ClickHouse HTTP interface of ``ch`` (a forwarded Service)."""
    r = await ch.post(
        "/", content=sql, headers={"X-ClickHouse-User": "admin", "X-ClickHouse-Key": password}
    )
    assert r.status_code == 200, r.text
    return r.text.strip()


def clickhouse(kube: Kube, namespace: str, sql: str, *, pod: str | None = None) -> str:
    """``sql`` run as the tenant's admin through its ``clickhouse`` Service, or on one
    ClickHouse ``pod`` (forwarded for this one statement)."""
    password = clickhouse_password(kube, namespace)
    to = ("pod", pod) if pod is not None else ("svc", contract.CLICKHOUSE_SERVICE)
    with forward(kube, namespace, to[1], contract.CLICKHOUSE_HTTP_PORT, kind=to[0]) as url:
        r = httpx.post(
            url,
            content=sql,
            headers={"X-ClickHouse-User": "admin", "X-ClickHouse-Key": password},
            timeout=scaled(60),
        )
    assert r.status_code == 200, r.text
    return r.text.strip()


def tenant_status(kube: Kube, name: str) -> dict[str, Any]:
    tenant = kube.get_or_none("tenant", name)
    return dict((tenant or {}).get("status") or {})


def wait_tenant(kube: Kube, name: str, phase: str = "Ready", timeout: float = 600) -> None:
    """Until the Tenant's status says ``phase`` for its current generation."""

    def seen() -> tuple[str | None, bool]:
        tenant = kube.get("tenant", name)
        status = tenant.get("status") or {}
        current = status.get("observedGeneration") == tenant["metadata"]["generation"]
        return status.get("phase"), current

    eventually(
        seen, accept=lambda s: s == (phase, True), timeout=timeout, what=f"Tenant {name} {phase}"
    )


def children(kube: Kube, namespace: str) -> dict[tuple[str, str], dict[str, Any]]:
    """What the operator made in a tenant's namespace, by (kind, name): the kinds it
    applies and prunes (tenantry_operator.apply.PRUNABLE), its Secrets and the volume
    claims of its StatefulSets."""
    kinds = [k.plural for k in apply.PRUNABLE] + ["secrets", "persistentvolumeclaims"]
    items = kube.get(",".join(kinds), "-n", namespace)["items"]
    return {
        (o["kind"], o["metadata"]["name"]): o
        for o in items
        if o["kind"] == "PersistentVolumeClaim"
        or (o["metadata"].get("labels") or {}).get(contract.LABEL_MANAGED_BY) == MANAGED_BY
    }


@dataclass(frozen=True)
class Volume:
    claim: str
    pv: str
    path: Path | None
    """The directory on the node (hostPath, or a local volume's path), when it has one."""


def volumes(kube: Kube, namespace: str) -> list[Volume]:
    """The namespace's claims, with the volume bound to each."""
    out = []
    for pvc in kube.get("pvc", "-n", namespace)["items"]:
        pv = kube.get("pv", pvc["spec"]["volumeName"])
        source = pv["spec"].get("hostPath") or pv["spec"].get("local") or {}
        path = Path(source["path"]) if source.get("path") else None
        out.append(Volume(pvc["metadata"]["name"], pv["metadata"]["name"], path))
    return out

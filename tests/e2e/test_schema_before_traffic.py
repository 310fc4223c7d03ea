"""Schema before traffic, through the whole operator: a new host joins the `clickhouse`
Service only once the operator has provisioned its schema.

Its own module, without the module-scoped operator of test_dataplane.py: that one
reaches a ClickHouse that always answers and would provision the new host at once. kwok
plays the kubelet (pods turn Ready, EndpointSlices are the real controller's), and the
override collapses every host to the one loopback engine over the session's chDB.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
from tenantry_operator.builders.clickhouse import SCHEMA_LABEL

from tenantry.clickhouse.chdb_client import ChdbClient
from tenantry_dev.services import free_port
from tests.conftest import LOOPBACK_WRITER_PASSWORD
from tests.e2e.test_dataplane import _tables, schema_pending
from tests.e2e.test_tenant_lifecycle import wait_phase
from tests.support.kube import Kube, tenant
from tests.support.operator import OperatorProcess
from tests.support.wait import eventually


def _endpoint_pods(kube: Kube, namespace: str, service: str) -> set[str]:
    """The pods in a Service's EndpointSlices (ready or not: what the controller put)."""
    slices = kube.get(
        "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={service}"
    )
    return {
        str(ep["targetRef"]["name"])
        for s in slices["items"]
        for ep in s.get("endpoints") or []
        if (ep.get("conditions") or {}).get("ready") and ep.get("targetRef")
    }


def _versions(kube: Kube, name: str, namespace: str) -> dict[str, str]:
    """resourceVersions of the Tenant and its ClickHouse pods."""
    pods = kube.get("pods", "-n", namespace, "-l", "app.kubernetes.io/component=clickhouse")
    versions = {p["metadata"]["name"]: p["metadata"]["resourceVersion"] for p in pods["items"]}
    versions["tenant"] = kube.get("tenant", name)["metadata"]["resourceVersion"]
    return versions


def _schema_label(kube: Kube, namespace: str, pod: str) -> str | None:
    found = kube.get_or_none("pod", pod, "-n", namespace)
    return None if found is None else (found["metadata"].get("labels") or {}).get(SCHEMA_LABEL)


def test_a_new_host_joins_the_service_only_once_its_schema_exists(
    crds: Kube, chdb_path: Path, chdb_client: ChdbClient, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Schema before traffic, on scale-out. The operator provisions each host through the
    host's own Service, then labels its pod; the `clickhouse` Service selects on the label.
    ClickHouse (the one engine every host collapses to here) refuses the operator's
    credentials from before the second shard is added: the new pod turns Ready (kwok)
    and is in its own Service, but stays out of `clickhouse` until the operator has
    provisioned it, which it does as soon as ClickHouse accepts it again. (Closing the
    server would not do: open keep-alive connections go on being served.)"""
    from tenantry_dev.loopback_server import LoopbackServer

    port = free_port()
    env = {
        **crds.env(),
        "TENANTRY_CLICKHOUSE_URL_OVERRIDE": (
            f"http://writer:{LOOPBACK_WRITER_PASSWORD}@127.0.0.1:{port}/"
        ),
        "TENANTRY_RESYNC_SECONDS": "2",  # idle reconciles, for the zero-write check
    }
    operator = OperatorProcess(env=env, log=tmp_path_factory.mktemp("operator") / "operator.log")
    operator.start()
    name = f"dp-scale-{secrets.token_hex(2)}"
    namespace = f"tenant-{name}"
    database = "t_" + name.replace("-", "_")
    users = {"writer": LOOPBACK_WRITER_PASSWORD}
    server = LoopbackServer(chdb_path, port=port, users=users).start()
    try:
        crds.apply(tenant(name, {"plan": "starter"}))
        st = wait_phase(crds, name, "Ready")
        assert st["schema"]["hosts"] == ["ch-s0-r0"]
        first = eventually(
            lambda: _endpoint_pods(crds, namespace, "clickhouse"),
            accept=lambda pods: pods == {"ch-s0-r0-0"},
            timeout=60,
            what="the first host in the clickhouse Service",
        )
        assert first == {"ch-s0-r0-0"}
        server.users.clear()  # ClickHouse refuses the operator from now on

        crds.run(
            "patch", "tenant", name, "--type=merge", "-p", '{"spec":{"clickhouse":{"shards":2}}}'
        )
        eventually(
            lambda: _endpoint_pods(crds, namespace, "ch-s1-r0"),
            accept=lambda pods: pods == {"ch-s1-r0-0"},
            timeout=120,
            what="the new host Ready in its own Service",
        )
        pending = schema_pending(crds, name, what="ClickHouse refuses the operator")
        assert "ch-s1-r0" in pending["message"]
        assert _schema_label(crds, namespace, "ch-s1-r0-0") is None
        assert _endpoint_pods(crds, namespace, "clickhouse") == {"ch-s0-r0-0"}
        assert crds.get("tenant", name)["status"]["schema"]["hosts"] == ["ch-s0-r0"]

        server.users.update(users)
        eventually(
            lambda: _endpoint_pods(crds, namespace, "clickhouse"),
            accept=lambda pods: pods == {"ch-s0-r0-0", "ch-s1-r0-0"},
            timeout=120,
            what="the new host in the clickhouse Service once provisioned",
        )
        assert _schema_label(crds, namespace, "ch-s1-r0-0") == "ready"
        st = wait_phase(crds, name, "Ready", timeout=120)
        assert st["schema"]["hosts"] == ["ch-s0-r0", "ch-s1-r0"]
        assert "events" in _tables(chdb_client, database)

        # Idle: periodic reconciles (every 2 s here) neither label nor patch anything.
        before = _versions(crds, name, namespace)
        time.sleep(8)
        assert _versions(crds, name, namespace) == before

        # A re-created pod comes without the label: provisioned again, then labelled.
        old_uid = crds.get("pod", "ch-s1-r0-0", "-n", namespace)["metadata"]["uid"]
        crds.run("delete", "pod", "ch-s1-r0-0", "-n", namespace, "--wait=false")
        eventually(
            lambda: crds.get_or_none("pod", "ch-s1-r0-0", "-n", namespace),
            accept=lambda pod: (
                pod is not None
                and pod["metadata"]["uid"] != old_uid
                and (pod["metadata"].get("labels") or {}).get(SCHEMA_LABEL) == "ready"
            ),
            timeout=120,
            what="the re-created pod labelled again",
        )
        eventually(
            lambda: _endpoint_pods(crds, namespace, "clickhouse"),
            accept=lambda pods: pods == {"ch-s0-r0-0", "ch-s1-r0-0"},
            timeout=120,
            what="the re-created pod back in the clickhouse Service",
        )
    finally:
        server.close()
        crds.try_run("delete", "tenant", name, "--wait=false")
        operator.stop()

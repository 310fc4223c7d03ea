"""One Tenant at a time on an idle real-node cluster: how long until it stands.

The product installed as users install it (tenantry_dev/platform.py: the chart, the
operator and control plane as pods, the local images with the ClickHouse and Keeper
STAND-INS), then ``--runs`` times: a starter Tenant applied with kubectl, and the time
from that apply to

- every child the operator's builders render for it exists (the expected set is built
  from the same builders and settings the chart gives the operator, not a hand list);
- every pod of the stack is Running and Ready;
- the Tenant reports phase Ready (its schema provisioned through the Service);

then the Tenant is deleted and its pods waited out before the next run. The first time
comes from the API server's audit log (every write is there with a microsecond stage
timestamp): the last child's first write minus the Tenant's own. The other two are
sampled by polling kubectl every ``--poll`` seconds (one ``kubectl get`` takes about
0.1-0.3 s here, which is their resolution). For each pod the run also notes, from the
pod's status (1 s resolution), when its container started and when it turned Ready,
so the time to Ready splits into scheduling + start-up and the probes. Printed as
p50 / p99 with the machine and the date.

Targets (issue 13): children p50 <= 0.5 s; Tenant Ready p50 <= 10 s with the stand-ins.
Usage (root; nothing else may hold the real node): python bench/operator_latency.py
[--runs 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform as machine
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tenantry_operator import builders, normalize  # noqa: E402

from bench.common import pct  # noqa: E402
from tenantry_dev import platform  # noqa: E402
from tests.support.kube import Kube  # noqa: E402
from tests.support.realcluster import real_cluster  # noqa: E402

CONTROLPLANE_URL = (
    f"http://{platform.CONTROLPLANE}-internal.{platform.NAMESPACE}.svc:8001"  # chart default
)


def _tenant(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "tenantry.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {"plan": "starter"},
    }


def _expected(body: dict[str, Any]) -> set[tuple[str, str]]:
    model = normalize.tenant_model(
        body, platform_namespaces=(platform.NAMESPACE,), controlplane_url=CONTROLPLANE_URL
    )
    return {
        (o["kind"], o["metadata"]["name"])
        for o in builders.build(model)
        if o["kind"] != "Namespace"
    }


def _pods_ready(kube: Kube, namespace: str) -> bool:
    """Every pod of the namespace has condition Ready True (and there is one)."""
    pods = kube.get("pods", "-n", namespace)["items"]
    return bool(pods) and all(
        any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (p.get("status") or {}).get("conditions") or []
        )
        for p in pods
    )


def _phase(kube: Kube, name: str) -> str:
    body = kube.get_or_none("tenant", name) or {}
    return str((body.get("status") or {}).get("phase", ""))


def _plural(kind: str) -> str:
    lower = kind.lower()
    return lower[:-1] + "ies" if lower.endswith("y") else lower + "s"


def _first_writes(audit_log: Path, namespace: str, tenant: str) -> dict[tuple[str, str], float]:
    """(resource, name) -> the first successful write's stage time (epoch seconds), for
    the tenant itself and for every object in its namespace."""
    firsts: dict[tuple[str, str], float] = {}
    with audit_log.open() as lines:
        for line in lines:
            event = json.loads(line)
            ref = event.get("objectRef") or {}
            if (event.get("responseStatus") or {}).get("code", 0) >= 300:
                continue
            if ref.get("subresource") or event.get("stage") != "ResponseComplete":
                continue
            mine = ref.get("namespace") == namespace or (
                ref.get("resource") == "tenants" and ref.get("name") == tenant
            )
            key = (str(ref.get("resource")), str(ref.get("name")))
            if mine and key not in firsts:
                at = dt.datetime.fromisoformat(event["stageTimestamp"].replace("Z", "+00:00"))
                firsts[key] = at.timestamp()
    return firsts


def _children_seconds(
    audit_log: Path, namespace: str, tenant: str, expected: set[tuple[str, str]]
) -> float:
    firsts = _first_writes(audit_log, namespace, tenant)
    wanted = {(_plural(kind), name) for kind, name in expected}
    missing = wanted - set(firsts)
    if missing or ("tenants", tenant) not in firsts:
        raise RuntimeError(f"{tenant}: no write in the audit log for {sorted(missing)}")
    return max(firsts[k] for k in wanted) - firsts[("tenants", tenant)]


def _stamp(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _pod_times(kube: Kube, namespace: str, applied_at: float) -> dict[str, dict[str, Any]]:
    """Per pod, from its status (1 s resolution; wall clock): apply -> container started,
    started -> Ready."""
    out: dict[str, dict[str, Any]] = {}
    for pod in kube.get("pods", "-n", namespace)["items"]:
        status = pod.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)
        started = [
            c["state"]["running"]["startedAt"]
            for c in status.get("containerStatuses") or []
            if "running" in (c.get("state") or {})
        ]
        if ready is None or not started:
            continue
        first = min(_stamp(t) for t in started)
        out[pod["metadata"]["name"]] = {
            "component": pod["spec"]["containers"][0]["name"],
            "started": first - applied_at,
            "probes": _stamp(ready["lastTransitionTime"]) - first,
        }
    return out


def one_run(
    kube: Kube, audit_log: Path, name: str, poll: float, timeout: float
) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    body = _tenant(name)
    expected = _expected(body)
    namespace = f"tenant-{name}"
    start = time.monotonic()
    applied_at = time.time()
    kube.apply(body)
    marks: dict[str, float] = {}
    while len(marks) < 2:
        now = time.monotonic() - start
        if now > timeout:
            raise RuntimeError(f"{name}: not Ready in {timeout:g} s ({sorted(marks)})")
        if "pods" not in marks and _pods_ready(kube, namespace):
            marks["pods"] = time.monotonic() - start
        if "ready" not in marks and _phase(kube, name) == "Ready":
            marks["ready"] = time.monotonic() - start
        time.sleep(poll)
    marks["children"] = _children_seconds(audit_log, namespace, name, expected)
    pods = _pod_times(kube, namespace, applied_at)
    # Deleted, and idle again before the next run: the stack's pods gone (the namespace
    # and its volume claims stay under the default Retain reclaim policy).
    kube.run("delete", "tenant", name, "--wait=true", timeout=600)
    deadline = time.monotonic() + timeout
    while kube.get("pods", "-n", namespace)["items"]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: pods still there {timeout:g} s after the delete")
        time.sleep(1)
    return marks, pods


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--poll", type=float, default=0.05)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    print(
        f"operator latency, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{machine.machine()} {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    rows = []
    pod_rows: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="tenantry-bench-") as state,
        real_cluster(Path(state)) as real,
    ):
        images = platform.Images.local()
        platform.load(real.cluster.state_dir, images.archives)
        platform.install(real.kube.kubeconfig, images)  # waits until the release is Ready
        audit_log = real.cluster.audit_log
        for i in range(args.runs):
            marks, pods = one_run(real.kube, audit_log, f"lat-{i}", args.poll, args.timeout)
            rows.append(marks)
            pod_rows.extend(pods.values())
            slowest = max(pods.items(), key=lambda kv: kv[1]["started"] + kv[1]["probes"])
            print(
                f"run {i + 1:2d}: children {marks['children']:.3f} s, "
                f"pods Ready {marks['pods']:.2f} s, Tenant Ready {marks['ready']:.2f} s; "
                f"slowest pod {slowest[0]}: started {slowest[1]['started']:.0f} s, "
                f"probes {slowest[1]['probes']:.0f} s",
                flush=True,
            )
    print(f"{len(rows)} runs, load {os.getloadavg()[0]:.1f} at the end")
    for key, what in (
        ("children", "all children exist"),
        ("pods", "all pods Ready"),
        ("ready", "Tenant Ready"),
    ):
        values = [r[key] for r in rows]
        print(f"apply -> {what}: p50 {pct(values, 0.5):.3f} s, p99 {pct(values, 0.99):.3f} s")
    for component in sorted({str(p["component"]) for p in pod_rows}):
        mine = [p for p in pod_rows if p["component"] == component]
        started = [float(p["started"]) for p in mine]
        probes = [float(p["probes"]) for p in mine]
        print(
            f"{component} ({len(mine)} pods): apply -> container started p50 "
            f"{pct(started, 0.5):.0f} s (max {max(started):.0f}); started -> Ready p50 "
            f"{pct(probes, 0.5):.0f} s (max {max(probes):.0f})"
        )


if __name__ == "__main__":
    main()

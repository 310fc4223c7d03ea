"""One Tenant at a time on an idle real-node cluster: how long until it stands.

The product installed as users install it (tests/incluster/platform.py: the chart, the
operator and control plane as pods, the local images with the ClickHouse and Keeper
STAND-INS), then ``--runs`` times: a starter Tenant applied with kubectl, and the time
from that apply to

- every child the operator's builders render for it exists (the expected set is built
  from the same builders and settings the chart gives the operator, not a hand list);
- every pod of the stack is Running and Ready;
- the Tenant reports phase Ready (its schema provisioned through the Service);

then the Tenant is deleted and its pods waited out before the next run. The three
times are sampled by polling kubectl every ``--poll`` seconds (one ``kubectl get`` of
every kind takes about 0.1-0.3 s here, which is the resolution), printed as p50 / p99
with the machine and the date.

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
from tests.incluster import platform  # noqa: E402
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


def _present(kube: Kube, namespace: str, kinds: set[str]) -> set[tuple[str, str]]:
    res = kube.try_run("get", ",".join(sorted(kinds)), "-n", namespace, "-o", "json")
    if res.code != 0:
        return set()
    return {(o["kind"], o["metadata"]["name"]) for o in json.loads(res.stdout)["items"]}


def _pods_ready(kube: Kube, namespace: str) -> bool:
    pods = kube.get("pods", "-n", namespace)["items"]
    return bool(pods) and len(platform.ready_pods(kube, namespace)) == len(pods)


def _phase(kube: Kube, name: str) -> str:
    body = kube.get_or_none("tenant", name) or {}
    return str((body.get("status") or {}).get("phase", ""))


def one_run(kube: Kube, name: str, poll: float, timeout: float) -> dict[str, float]:
    body = _tenant(name)
    expected = _expected(body)
    kinds = {kind.lower() for kind, _ in expected}
    namespace = f"tenant-{name}"
    start = time.monotonic()
    kube.apply(body)
    marks: dict[str, float] = {}
    while len(marks) < 3:
        now = time.monotonic() - start
        if now > timeout:
            raise RuntimeError(f"{name}: not Ready in {timeout:g} s ({sorted(marks)})")
        if "children" not in marks and expected <= _present(kube, namespace, kinds):
            marks["children"] = time.monotonic() - start
        if "children" in marks and "pods" not in marks and _pods_ready(kube, namespace):
            marks["pods"] = time.monotonic() - start
        if "ready" not in marks and _phase(kube, name) == "Ready":
            marks["ready"] = time.monotonic() - start
        time.sleep(poll)
    # Deleted, and idle again before the next run: the stack's pods gone (the namespace
    # and its volume claims stay under the default Retain reclaim policy).
    kube.run("delete", "tenant", name, "--wait=true", timeout=600)
    deadline = time.monotonic() + timeout
    while kube.get("pods", "-n", namespace)["items"]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: pods still there {timeout:g} s after the delete")
        time.sleep(1)
    return marks


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
    with (
        tempfile.TemporaryDirectory(prefix="tenantry-bench-") as state,
        real_cluster(Path(state)) as real,
    ):
        images = platform.Images.local()
        platform.load(real.cluster.state_dir, images.archives)
        platform.install(real.kube, images)
        platform.wait_rollout(real.kube, platform.NAMESPACE, f"deployment/{platform.OPERATOR}")
        for i in range(args.runs):
            marks = one_run(real.kube, f"lat-{i}", args.poll, args.timeout)
            rows.append(marks)
            print(
                f"run {i + 1:2d}: children {marks['children']:.2f} s, "
                f"pods Ready {marks['pods']:.2f} s, Tenant Ready {marks['ready']:.2f} s",
                flush=True,
            )
    print(f"{len(rows)} runs, load {os.getloadavg()[0]:.1f} at the end")
    for key, what in (
        ("children", "all children exist"),
        ("pods", "all pods Ready"),
        ("ready", "Tenant Ready"),
    ):
        values = [r[key] for r in rows]
        print(f"apply -> {what}: p50 {pct(values, 0.5):.2f} s, p99 {pct(values, 0.99):.2f} s")


if __name__ == "__main__":
    main()

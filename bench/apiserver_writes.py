"""The floor under bench/operator_scale.py: how fast can this machine's API server take a
starter tenant's objects at all, with no operator logic in the way?

Starts the same local control plane as operator_scale.py (etcd, kube-apiserver,
controllers, scheduler, kwok), creates N Tenant CRs (no operator runs), then writes
exactly the objects the operator's builders render for each of them (namespace first,
then the rest), by server-side apply from the operator's own client, C requests in
flight. Prints the write rate and, per tenant, the time from the start until its
objects all exist (p50/p99): what apply -> children would be if the operator cost
nothing. The controllers react as they would (pods, PVCs, endpoint slices), so their
writes share the machine as they do in the real run.

Usage: python bench/apiserver_writes.py [--tenants 200] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tenantry_operator import builders, normalize  # noqa: E402
from tenantry_operator.kube import Kube  # noqa: E402

from bench.common import pct  # noqa: E402
from tenantry_dev.cluster import LocalCluster, Ports  # noqa: E402


def cpu_by_process(marker: str) -> dict[str, float]:
    """CPU seconds of this process and of every process whose command line names
    ``marker`` (the cluster's state folder), by executable name."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) != os.getpid() and not any(marker.encode() in c for c in cmd):
            continue
        name = "bench (client)" if int(entry.name) == os.getpid() else Path(cmd[0].decode()).name
        if name.startswith("python"):
            name = cmd[2].decode() if len(cmd) > 2 else name  # python -m <module>
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return out


def tenant_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "tenantry.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {"plan": "starter"},
    }


async def run(kube: Kube, tenants: int, concurrency: int, marker: str, mode: str) -> None:
    names = [f"floor-{i:04d}" for i in range(tenants)]
    uids = {}
    for name in names:  # owners must exist, or the garbage collector removes the children
        created = await kube.create(tenant_body(name))
        assert created is not None
        uids[name] = created["metadata"]["uid"]
    plans = []
    for name in names:
        body = {**tenant_body(name), "metadata": {"name": name, "uid": uids[name]}}
        plans.append((name, builders.build(normalize.tenant_model(body))))
    per_tenant = len(plans[0][1])
    slots = asyncio.Semaphore(concurrency)
    done_at: dict[str, float] = {}
    cpu0 = cpu_by_process(marker)
    start = time.monotonic()

    async def write(obj: dict[str, Any]) -> None:
        async with slots:
            if mode == "apply":
                await kube.apply(obj)
            else:
                await kube.create(obj)

    async def one(name: str, objs: list[dict[str, Any]]) -> None:
        await asyncio.gather(*(write(o) for o in objs if o["kind"] == "Namespace"))
        await asyncio.gather(*(write(o) for o in objs if o["kind"] != "Namespace"))
        done_at[name] = time.monotonic() - start

    await asyncio.gather(*(one(n, objs) for n, objs in plans))
    total = time.monotonic() - start
    cpu1 = cpu_by_process(marker)
    latencies = list(done_at.values())
    writes = per_tenant * tenants
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; etcd + kube-apiserver + controllers + kwok here too"
    )
    print(
        f"tenants: {tenants}, {per_tenant} objects each, {concurrency} requests in flight, "
        f"by {'server-side apply' if mode == 'apply' else 'create (POST)'}"
    )
    print(f"{writes} applies in {total:.1f} s: {writes / total:.0f} writes/s")
    print(
        f"start -> all of a tenant's objects exist: p50 {statistics.median(latencies):.2f} s, "
        f"p99 {pct(latencies, 0.99):.2f} s, max {max(latencies):.2f} s"
    )
    used = {k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1}
    print(
        "CPU during the writes (cores): "
        + ", ".join(f"{k} {v / total:.2f}" for k, v in sorted(used.items(), key=lambda x: -x[1]))
    )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--mode", choices=("apply", "create"), default="apply", help="server-side apply or POST"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tenantry-floor-") as tmp:
        cluster = LocalCluster(Path(tmp) / "cluster", ports=Ports.free(), log=lambda _: None)
        cluster.up()
        try:
            os.environ["KUBECONFIG"] = str(cluster.kubeconfig)

            cluster.install_crds()

            async def go() -> None:
                kube = Kube.from_env()
                try:
                    await run(kube, args.tenants, args.concurrency, tmp, args.mode)
                finally:
                    await kube.close()

            asyncio.run(go())
        finally:
            cluster.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())

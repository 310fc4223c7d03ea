"""Operator at scale: N Tenants applied at once on the local real control plane.

Prints, with the machine noted:
- apply -> children latency per tenant (p50/p99): from the Tenant's create request to
  the moment all its workloads (host StatefulSets, Redis, ingestion) exist;
- time until all N are Ready;
- the operator's peak RSS, its CPU use while idle, and its API writes during the idle
  window (from the API server's audit log, by the operator's own user).

Targets (issue 3): p50 <= 0.5 s, p99 <= 2 s, 200 Ready <= 60 s, RSS <= 200 MB at 500,
0 writes when idle. Usage: python bench/operator_scale.py [--tenants 200] [--idle 60]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import pct  # noqa: E402
from tenantry_dev.cluster import LocalCluster, Ports  # noqa: E402
from tenantry_dev.services import free_port  # noqa: E402

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


def proc_stat(pid: int) -> tuple[float, int]:
    """(cpu seconds, peak RSS bytes) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) * 1024
    return cpu, hwm


def operator_writes(audit: Path, offset: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    with audit.open() as f:
        f.seek(offset)
        for line in f:
            ev = json.loads(line)
            if ev.get("user", {}).get("username") != "tenantry-operator":
                continue
            if ev.get("verb") in WRITE_VERBS and ev.get("stage") == "ResponseComplete":
                key = f"{ev['verb']} {ev.get('objectRef', {}).get('resource', '?')}"
                counts[key] = counts.get(key, 0) + 1
    return counts


def main() -> int:
    # A TERM (timeout, Ctrl-C in a wrapper) must still stop the cluster it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--keep-log", help="copy the operator's log here at the end")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tenantry-bench-") as tmp:
        cluster = LocalCluster(Path(tmp) / "cluster", ports=Ports.free(), log=lambda _: None)
        cluster.up()
        cluster.install_crds()
        # kwok pods run nothing: the tenants' ClickHouse is one loopback engine (chDB),
        # where the operator really provisions each tenant's schema.
        ch_port = free_port()
        ch = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tenantry_dev.loopback_server",
                "--path",
                str(Path(tmp) / "chdb"),
                "--port",
                str(ch_port),
                "--user",
                "bench",
                "--password",
                "bench",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        op_env = {
            **os.environ,
            "KUBECONFIG": str(cluster.operator_kubeconfig),
            "TENANTRY_CLICKHOUSE_URL_OVERRIDE": f"http://bench:bench@127.0.0.1:{ch_port}/",
        }
        log = (Path(tmp) / "operator.log").open("wb")
        op = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tenantry_cli",
                "operator",
                "--liveness",
                f"http://127.0.0.1:{free_port()}/healthz",
            ],
            env=op_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            return run(cluster, op, args)
        finally:
            op.terminate()
            op.wait(timeout=30)
            ch.terminate()
            ch.wait(timeout=30)
            if args.keep_log:
                Path(args.keep_log).write_bytes((Path(tmp) / "operator.log").read_bytes())
            cluster.destroy()


def run(cluster: LocalCluster, op: subprocess.Popen[bytes], args: argparse.Namespace) -> int:
    time.sleep(3)  # operator start-up
    names = [f"bench-{i:04d}" for i in range(args.tenants)]
    created: dict[str, float] = {}

    def create(name: str) -> None:
        body = {
            "apiVersion": "tenantry.io/v1alpha1",
            "kind": "Tenant",
            "metadata": {"name": name},
            "spec": {"plan": "starter"},
        }
        t = time.monotonic()
        code, text = cluster.request("POST", "/apis/tenantry.io/v1alpha1/tenants", body)
        if code != 201:
            raise RuntimeError(f"create {name}: {code} {text[:200]!r}")
        created[name] = t

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(create, names))
    applied = time.monotonic() - start
    children_at: dict[str, float] = {}
    ready_at: dict[str, float] = {}
    want = {"ch-s0-r0", "redis", "ingestion"}
    deadline = time.monotonic() + args.timeout
    while len(ready_at) < len(names) and time.monotonic() < deadline:
        now = time.monotonic()
        seen: dict[str, set[str]] = {}
        for path in ("/apis/apps/v1/statefulsets", "/apis/apps/v1/deployments"):
            code, body = cluster.get(path + "?labelSelector=tenantry.io%2Ftenant")
            for item in json.loads(body)["items"] if code == 200 else []:
                tenant = item["metadata"]["labels"]["tenantry.io/tenant"]
                seen.setdefault(tenant, set()).add(item["metadata"]["name"])
        for tenant, objs in seen.items():
            if tenant not in children_at and want <= objs:
                children_at[tenant] = now
        code, body = cluster.get("/apis/tenantry.io/v1alpha1/tenants")
        for item in json.loads(body)["items"] if code == 200 else []:
            st = item.get("status") or {}
            if st.get("phase") == "Ready" and item["metadata"]["name"] not in ready_at:
                ready_at[item["metadata"]["name"]] = now
        time.sleep(0.25)
    stuck = [n for n in names if n not in ready_at]
    if stuck:  # say why, so a run that misses the mark can be understood
        for name in stuck[:3]:
            code, body = cluster.get(f"/apis/tenantry.io/v1alpha1/tenants/{name}")
            status = json.loads(body).get("status", {}) if code == 200 else {}
            conds = [
                f"{c['type']}={c['status']} {c.get('reason')}: {c.get('message')}"
                for c in status.get("conditions", [])
                if c["status"] != ("False" if c["type"] in ("Degraded", "Progressing") else "True")
            ]
            print(f"not Ready: {name} phase={status.get('phase')} " + "; ".join(conds))
    latencies = [children_at[n] - created[n] for n in names if n in children_at]
    all_ready = max(ready_at.values()) - start if len(ready_at) == len(names) else None
    audit = cluster.audit_log
    offset = audit.stat().st_size
    cpu0, _ = proc_stat(op.pid)
    time.sleep(args.idle)
    cpu1, peak = proc_stat(op.pid)
    writes = operator_writes(audit, offset)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, cluster: local (etcd + kube-apiserver + "
        "controllers + kwok), all on this machine"
    )
    print(
        f"tenants: {len(names)} (starter plan), created in {applied:.1f} s (16 concurrent clients)"
    )
    if latencies:
        print(
            f"apply -> children: p50 {statistics.median(latencies):.2f} s, "
            f"p99 {pct(latencies, 0.99):.2f} s, max {max(latencies):.2f} s "
            f"({len(latencies)}/{len(names)} complete)"
        )
    print(
        "all Ready: "
        + (
            f"{all_ready:.1f} s after the first create"
            if all_ready
            else f"NOT within {args.timeout:.0f} s ({len(ready_at)} Ready)"
        )
    )
    print(f"operator peak RSS: {peak / 2**20:.0f} MiB")
    print(
        f"operator CPU while idle: {100 * (cpu1 - cpu0) / args.idle:.2f} % of one core "
        f"over {args.idle:.0f} s"
    )
    print(
        f"operator API writes while idle ({args.idle:.0f} s): {sum(writes.values())} "
        + (json.dumps(writes) if writes else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

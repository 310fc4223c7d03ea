"""Which Kubernetes client: lightkube (what the operator and control plane use) against the
official client's asyncio twin, kubernetes_asyncio, the official package's own asyncio
client, kubernetes.aio, and the official sync client, kubernetes (issue 15, item 8).

Starts the local control plane (etcd, kube-apiserver, controllers, scheduler, kwok; the
binaries of ``make tools``), then runs every client in a child process of its own, so
memory is per client. Each child measures:

- import time of the client (a fresh interpreter; the OS file cache is warm after the
  first round, as it is for a running operator);
- RSS after import + client construction (kubeconfig loaded, client built), and peak RSS
  after the workload, each minus a bare-Python child (``none``: the same harness, no
  client) measured the same way;
- the operator's operation mix on the ConfigMaps and Services a starter tenant gets
  (rendered by the operator's own builders): server-side apply with the operator's field
  manager (create), the same apply again (unchanged: the drift repair's no-op), get, list
  by label selector, delete; one request at a time, latency per request and the child's
  CPU seconds over the whole mix. Every client returns plain dicts, as the operator's
  ``Kube`` does (lightkube: model ``.to_dict()``; kubernetes: ``sanitize_for_serialization``).

Clients: ``lightkube`` (lightkube's AsyncClient, the calls ``tenantry_operator.kube.Kube``
makes), ``Kube`` (the operator's wrapper itself, which also imports the CRD models),
``kubernetes_asyncio``, ``kubernetes.aio`` (the asyncio client the official package
ships since version 37) and ``kubernetes`` (sync). The rounds alternate the clients'
order so the machine's noise hits all of them; ratios are against lightkube, per round, then the
median over rounds.

The official clients are not in the dev venv (with either installed, ``import kopf``
imports both: pyproject.toml, the ``kubebench`` extra). The benchmark installs
``requirements/kubebench.lock`` (hashes checked) into a folder of the tool cache once and
puts it on the path of those clients' children only.

Usage: python bench/kube_client.py [--rounds 5] [--objects 60]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib
import inspect
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIELD_MANAGER = "tenantry-operator"  # tenantry_operator.kube.FIELD_MANAGER (checked below)
NAMESPACE = "bench-kube-client"
CLIENTS = ("lightkube", "Kube", "kubernetes_asyncio", "kubernetes.aio", "kubernetes")
OPS = ("apply", "reapply", "get", "list", "delete")
Obj = dict[str, Any]


# -- the child: one client, one round ------------------------------------------------------
def rss_kib(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


class Client:
    """The five calls of the mix, each returning plain dicts."""

    async def apply(self, obj: Obj) -> Obj:
        raise NotImplementedError

    async def get(self, kind: str, name: str) -> Obj:
        raise NotImplementedError

    async def list(self, kind: str, labels: dict[str, str]) -> list[Obj]:
        raise NotImplementedError

    async def delete(self, kind: str, name: str) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        return None


def make_lightkube(kubeconfig: str) -> Client:
    from lightkube import AsyncClient, KubeConfig
    from lightkube.codecs import resource_registry
    from lightkube.types import PatchType

    client = AsyncClient(config=KubeConfig.from_file(kubeconfig), field_manager=FIELD_MANAGER)

    def res(kind: str) -> Any:
        return resource_registry.load("v1", kind)

    class Lightkube(Client):
        async def apply(self, obj: Obj) -> Obj:
            meta = obj["metadata"]
            result = await client.patch(
                res(obj["kind"]),
                meta["name"],
                obj,
                namespace=meta["namespace"],
                patch_type=PatchType.APPLY,
                field_manager=FIELD_MANAGER,
                force=True,
            )
            data: Obj = result.to_dict()
            return data

        async def get(self, kind: str, name: str) -> Obj:
            data: Obj = (await client.get(res(kind), name, namespace=NAMESPACE)).to_dict()
            return data

        async def list(self, kind: str, labels: dict[str, str]) -> list[Obj]:
            found = client.list(res(kind), namespace=NAMESPACE, labels=dict(labels))
            return [obj.to_dict() async for obj in found]

        async def delete(self, kind: str, name: str) -> None:
            await client.delete(res(kind), name, namespace=NAMESPACE)

        async def close(self) -> None:
            await client.close()

    return Lightkube()


def make_kube(kubeconfig: str) -> Client:
    os.environ["KUBECONFIG"] = kubeconfig
    from tenantry_operator.kube import Kube

    kube = Kube.from_env()

    class OperatorKube(Client):
        async def apply(self, obj: Obj) -> Obj:
            return await kube.apply(obj)

        async def get(self, kind: str, name: str) -> Obj:
            found = await kube.get("v1", kind, name, NAMESPACE)
            assert found is not None
            return found

        async def list(self, kind: str, labels: dict[str, str]) -> list[Obj]:
            return await kube.list("v1", kind, namespace=NAMESPACE, labels=labels)

        async def delete(self, kind: str, name: str) -> None:
            assert await kube.delete("v1", kind, name, NAMESPACE)

        async def close(self) -> None:
            await kube.close()

    return OperatorKube()


APPLY_YAML = "application/apply-patch+yaml"  # a JSON body is YAML too


def snake(kind: str) -> str:
    return {"ConfigMap": "config_map", "Service": "service"}[kind]


async def _done(result: Any) -> Any:
    """A call's result: awaited for the asyncio clients, as is for the sync one."""
    return await result if inspect.isawaitable(result) else result


def _official(api_client: Any, core: Any) -> Client:
    """The official generated API (sync or asyncio: the same methods) as a ``Client``.
    Server-side apply is a patch with the apply content type on every call."""
    plain: Callable[[Any], Any] = api_client.sanitize_for_serialization

    class Official(Client):
        async def apply(self, obj: Obj) -> Obj:
            meta = obj["metadata"]
            call = getattr(core, f"patch_namespaced_{snake(obj['kind'])}")
            result = await _done(
                call(
                    meta["name"],
                    meta["namespace"],
                    obj,
                    field_manager=FIELD_MANAGER,
                    force=True,
                    _content_type=APPLY_YAML,
                )
            )
            data: Obj = plain(result)
            return data

        async def get(self, kind: str, name: str) -> Obj:
            read = getattr(core, f"read_namespaced_{snake(kind)}")
            data: Obj = plain(await _done(read(name, NAMESPACE)))
            return data

        async def list(self, kind: str, labels: dict[str, str]) -> list[Obj]:
            selector = ",".join(f"{k}={v}" for k, v in labels.items())
            found = await _done(
                getattr(core, f"list_namespaced_{snake(kind)}")(NAMESPACE, label_selector=selector)
            )
            return [plain(item) for item in found.items]

        async def delete(self, kind: str, name: str) -> None:
            await _done(getattr(core, f"delete_namespaced_{snake(kind)}")(name, NAMESPACE))

        async def close(self) -> None:
            await _done(api_client.close())

    return Official()


async def make_async_official(kubeconfig: str, package: str) -> Client:
    """kubernetes_asyncio, or the official client's own asyncio twin ``kubernetes.aio``
    (since kubernetes 37): the same generated API on aiohttp."""
    kclient: Any = importlib.import_module(f"{package}.client")
    kconfig: Any = importlib.import_module(f"{package}.config")

    await kconfig.load_kube_config(config_file=kubeconfig)
    api_client: Any = kclient.ApiClient()
    return _official(api_client, kclient.CoreV1Api(api_client))


def make_kubernetes(kubeconfig: str) -> Client:
    """The sync client, called in the event loop's thread one request at a time (as the
    mix is sequential, this is its best case; an async operator would need a thread
    pool around it)."""
    from kubernetes import client as kclient
    from kubernetes import config as kconfig

    kconfig.load_kube_config(config_file=kubeconfig)
    api_client: Any = kclient.ApiClient()
    return _official(api_client, kclient.CoreV1Api(api_client))


IMPORTS = {
    "none": (),
    "lightkube": ("lightkube", "lightkube.codecs", "lightkube.types"),
    "Kube": ("tenantry_operator.kube",),
    "kubernetes_asyncio": ("kubernetes_asyncio.client", "kubernetes_asyncio.config"),
    "kubernetes.aio": ("kubernetes.aio.client", "kubernetes.aio.config"),
    "kubernetes": ("kubernetes.client", "kubernetes.config"),
}


def import_client(name: str) -> None:
    for module in IMPORTS[name]:
        importlib.import_module(module)


async def construct(name: str, kubeconfig: str) -> Client | None:
    if name == "lightkube":
        return make_lightkube(kubeconfig)
    if name == "Kube":
        return make_kube(kubeconfig)
    if name in ("kubernetes_asyncio", "kubernetes.aio"):
        return await make_async_official(kubeconfig, name)
    if name == "kubernetes":
        return make_kubernetes(kubeconfig)
    return None


def objects(templates: list[Obj], count: int, tag: str) -> list[Obj]:
    """``count`` objects cycling through the templates, renamed, in the bench namespace,
    labelled with this run's tag (what the lists select on)."""
    out = []
    for i in range(count):
        obj = json.loads(json.dumps(templates[i % len(templates)]))
        meta = obj["metadata"]
        meta["name"] = f"{meta['name']}-{i:03d}"
        meta["namespace"] = NAMESPACE
        meta.pop("ownerReferences", None)
        meta.setdefault("labels", {})["bench.tenantry.io/run"] = tag
        out.append(obj)
    return out


async def workload(client: Client, objs: list[Obj], tag: str, lists: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {op: [] for op in OPS}

    async def timed(op: str, call: Awaitable[Any]) -> Any:
        start = time.perf_counter()
        result = await call
        times[op].append(time.perf_counter() - start)
        return result

    for obj in objs:
        applied = await timed("apply", client.apply(obj))
        managers = {
            (m["manager"], m["operation"]) for m in applied["metadata"].get("managedFields", [])
        }
        assert (FIELD_MANAGER, "Apply") in managers, managers  # really server-side apply
    for obj in objs:
        await timed("reapply", client.apply(obj))
    for obj in objs:
        got = await timed("get", client.get(obj["kind"], obj["metadata"]["name"]))
        assert got["metadata"]["name"] == obj["metadata"]["name"]
    kinds = sorted({o["kind"] for o in objs})
    for i in range(lists):
        kind = kinds[i % len(kinds)]
        found = await timed("list", client.list(kind, {"bench.tenantry.io/run": tag}))
        assert len(found) == sum(o["kind"] == kind for o in objs)
    for obj in objs:
        await timed("delete", client.delete(obj["kind"], obj["metadata"]["name"]))
    return times


async def child_main(name: str, kubeconfig: str, templates: list[Obj], count: int, tag: str) -> Obj:
    rss_start = rss_kib()
    t0 = time.perf_counter()
    import_client(name)
    t1 = time.perf_counter()
    client = await construct(name, kubeconfig)
    t2 = time.perf_counter()
    result: Obj = {
        "client": name,
        "import_s": t1 - t0,
        "construct_s": t2 - t1,
        "rss_start_kib": rss_start,
        "rss_built_kib": rss_kib(),
    }
    if client is None:
        result["rss_peak_kib"] = rss_kib("VmHWM")
        return result
    try:
        objs = objects(templates, count, tag)
        warm = objs[0]  # the first request opens the connection (TLS): not counted
        await client.list(warm["kind"], {"bench.tenantry.io/run": tag})
        cpu0 = time.process_time()
        start = time.perf_counter()
        times = await workload(client, objs, tag, lists=max(10, count // 3))
        result["wall_s"] = time.perf_counter() - start
        result["cpu_s"] = time.process_time() - cpu0
        result["times"] = times
        result["rss_peak_kib"] = rss_kib("VmHWM")
    finally:
        await client.close()
    return result


# -- the parent: cluster, rounds, report -------------------------------------------------
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return pct(values, 0.5)


def machine() -> str:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    import platform

    return (
        f"{os.cpu_count()} cores ({model}), {mem_kib / 1024 / 1024:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def versions(official: Path) -> str:
    from importlib.metadata import distributions, version

    there = {
        d.metadata["Name"].lower().replace("_", "-"): d.version
        for d in distributions(path=[str(official)])
    }
    names = ("kubernetes-asyncio", "aiohttp", "kubernetes", "urllib3")
    return ", ".join(
        [f"{p} {version(p)}" for p in ("lightkube", "httpx2")] + [f"{p} {there[p]}" for p in names]
    )


OFFICIAL = ("kubernetes_asyncio", "kubernetes.aio", "kubernetes")


def official_clients() -> Path:
    """requirements/kubebench.lock installed (hashes checked, no resolution) into a folder
    of the tool cache named by the lock's digest; its path."""
    lock = REPO / "requirements" / "kubebench.lock"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("TENANTRY_CACHE", Path.home() / ".cache" / "tenantry"))
    target = cache / f"kubebench-{digest}"
    if not (target / ".installed").exists():
        uv = subprocess.run(
            ["bash", str(REPO / "scripts" / "uv.sh")], check=True, capture_output=True, text=True
        ).stdout.strip()
        subprocess.run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                sys.executable,
                "--target",
                str(target),
                "--require-hashes",
                "--no-deps",
                "-r",
                str(lock),
            ],
            check=True,
        )
        (target / ".installed").touch()
    return target


def run_child(
    name: str, kubeconfig: Path, templates: Path, count: int, tag: str, official: Path
) -> Obj:
    env = dict(os.environ)
    if name in OFFICIAL:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(official), env.get("PYTHONPATH"))))
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            name,
            "--kubeconfig",
            str(kubeconfig),
            "--templates",
            str(templates),
            "--objects",
            str(count),
            "--tag",
            tag,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    data: Obj = json.loads(proc.stdout.strip().splitlines()[-1])
    return data


def starter_templates() -> list[Obj]:
    """The ConfigMaps and Services the operator's builders render for a starter tenant."""
    from tenantry_operator import builders, kube, normalize

    assert kube.FIELD_MANAGER == FIELD_MANAGER
    body = {
        "apiVersion": "tenantry.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": "bench", "uid": "00000000-0000-0000-0000-000000000000"},
        "spec": {"plan": "starter"},
    }
    built = builders.build(normalize.tenant_model(body))
    return [dict(o) for o in built if o["kind"] in ("ConfigMap", "Service")]


def report(results: list[list[Obj]], rounds: int) -> None:
    by: dict[str, list[Obj]] = {}
    for rnd in results:
        for res in rnd:
            by.setdefault(res["client"], []).append(res)
    base_built = median([r["rss_built_kib"] for r in by["none"]])
    base_peak = median([r["rss_peak_kib"] for r in by["none"]])
    mib = 1024.0
    print(
        f"\nbare Python (harness, no client): RSS {base_built / mib:.1f} MiB, peak "
        f"{base_peak / mib:.1f} MiB; every figure below is over {rounds} rounds, medians "
        "of the per-round values unless pooled"
    )
    header = (
        f"{'client':<20}{'import s':>9}{'build s':>9}{'RSS MiB':>9}{'peak MiB':>9}"
        f"{'CPU ms/op':>10}{'p50 ms':>8}{'p99 ms':>8}"
    )
    print(header)
    rows: dict[str, dict[str, float]] = {}
    for name in CLIENTS:
        rs = by[name]
        pooled = [t for r in rs for op in OPS for t in r["times"][op]]
        ops = sum(len(r["times"][op]) for r in rs for op in OPS)
        row = {
            "import": median([r["import_s"] for r in rs]),
            "build": median([r["construct_s"] for r in rs]),
            "rss": (median([r["rss_built_kib"] for r in rs]) - base_built) / mib,
            "peak": (median([r["rss_peak_kib"] for r in rs]) - base_peak) / mib,
            "cpu": 1000 * sum(r["cpu_s"] for r in rs) / ops,
            "p50": 1000 * pct(pooled, 0.5),
            "p99": 1000 * pct(pooled, 0.99),
        }
        rows[name] = row
        print(
            f"{name:<20}{row['import']:>9.3f}{row['build']:>9.3f}{row['rss']:>9.1f}"
            f"{row['peak']:>9.1f}{row['cpu']:>10.2f}{row['p50']:>8.2f}{row['p99']:>8.2f}"
        )
    print(
        "\nlatency by operation, p50 / p99 ms (pooled over rounds; ops per client: "
        + ", ".join(f"{op} {len(by['lightkube'][0]['times'][op]) * rounds}" for op in OPS)
        + ")"
    )
    print(f"{'client':<20}" + "".join(f"{op:>16}" for op in OPS))
    for name in CLIENTS:
        cells = []
        for op in OPS:
            vals = [t for r in by[name] for t in r["times"][op]]
            cells.append(f"{1000 * pct(vals, 0.5):.2f} / {1000 * pct(vals, 0.99):.2f}")
        print(f"{name:<20}" + "".join(f"{c:>16}" for c in cells))

    print("\nratios to lightkube, per round then median [min-max] over rounds:")
    base = {i: next(r for r in rnd if r["client"] == "lightkube") for i, rnd in enumerate(results)}

    def per_round(name: str, metric: Callable[[Obj], float]) -> str:
        vals = []
        for i, rnd in enumerate(results):
            mine = next(r for r in rnd if r["client"] == name)
            vals.append(metric(mine) / metric(base[i]))
        return f"{median(vals):.2f} [{min(vals):.2f}-{max(vals):.2f}]"

    def cpu_op(r: Obj) -> float:
        return float(r["cpu_s"]) / sum(len(r["times"][op]) for op in OPS)

    def p50(r: Obj) -> float:
        return pct([t for op in OPS for t in r["times"][op]], 0.5)

    def wall(r: Obj) -> float:
        return float(r["wall_s"])

    for name in CLIENTS[1:]:
        rss = rows[name]["rss"] / rows["lightkube"]["rss"]
        print(
            f"  {name:<20} import {per_round(name, lambda r: float(r['import_s']))}, "
            f"RSS {rss:.2f}, CPU/op {per_round(name, cpu_op)}, p50 {per_round(name, p50)}, "
            f"wall of the mix {per_round(name, wall)}"
        )
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def parent_main(args: argparse.Namespace) -> int:
    import signal
    import tempfile

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from tenantry_dev.cluster import LocalCluster, Ports

    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"machine: {machine()}")
    official = official_clients()
    print(f"versions: {versions(official)}")
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="tenantry-kubeclient-") as tmp:
        templates = Path(tmp) / "templates.json"
        templates.write_text(json.dumps(starter_templates()))
        cluster = LocalCluster(Path(tmp) / "cluster", ports=Ports.free(), log=lambda _: None)
        try:
            print(f"cluster up in {cluster.up():.1f} s (etcd, kube-apiserver, controllers, kwok)")
            from tenantry_dev import tools

            kubectl = str(tools.ensure(("kubectl",))["kubectl"])
            subprocess.run(
                [
                    kubectl,
                    "--kubeconfig",
                    str(cluster.kubeconfig),
                    "create",
                    "namespace",
                    NAMESPACE,
                ],
                check=True,
                capture_output=True,
            )
            print(
                f"mix per child: {args.objects} objects (starter tenant's ConfigMaps and "
                f"Services), apply, re-apply, get, {max(10, args.objects // 3)} lists, delete; "
                "one request at a time"
            )
            names = ("none", *CLIENTS)
            results = []
            for rnd in range(args.rounds):
                order = names[rnd % len(names) :] + names[: rnd % len(names)]
                done = []
                for name in order:
                    tag = f"{name.lower().replace('_', '-')}-{rnd}"
                    done.append(
                        run_child(name, cluster.kubeconfig, templates, args.objects, tag, official)
                    )
                results.append(done)
                print(f"round {rnd + 1}/{args.rounds}: {', '.join(order)}", flush=True)
            report(results, args.rounds)
        finally:
            cluster.destroy()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--objects", type=int, default=60)
    parser.add_argument("--child", choices=("none", *CLIENTS), help=argparse.SUPPRESS)
    parser.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    parser.add_argument("--templates", help=argparse.SUPPRESS)
    parser.add_argument("--tag", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        templates = json.loads(Path(args.templates).read_text())
        out = asyncio.run(
            child_main(args.child, args.kubeconfig, templates, args.objects, args.tag)
        )
        print(json.dumps(out))
        return 0
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())

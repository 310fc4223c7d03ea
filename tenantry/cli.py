"""``tenantry``: one entry point for the operator, the local cluster and code generation."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _cluster(args: argparse.Namespace) -> int:
    from tenantry.devcluster.cluster import LocalCluster, Ports

    cluster = LocalCluster(
        Path(args.state_dir), ports=Ports.fixed(args.port_base), nodes=args.nodes
    )
    if args.action == "up":
        cluster.up()
    elif args.action == "down":
        cluster.down()
        print("cluster stopped")
    elif args.action == "destroy":
        cluster.destroy()
        print("cluster stopped and its state removed")
    else:
        running = cluster.running()
        print("running" if running else "stopped")
        return 0 if running else 1
    return 0


def _dev(args: argparse.Namespace) -> int:
    from tenantry.devcluster import stack
    from tenantry.devcluster.cluster import LocalCluster, Ports

    cluster = LocalCluster(Path(args.state_dir), ports=Ports.fixed(args.port_base))
    return stack.run(cluster, api_port=args.api_port)


def _crds(args: argparse.Namespace) -> int:
    from tenantry.api import crdgen

    for path in crdgen.write(Path(args.out)):
        print(f"wrote {path}")
    return 0


def _operator(args: argparse.Namespace) -> int:
    from tenantry.settings import SettingsError

    try:  # the handlers read their settings when they are registered, at import
        from tenantry_operator import main as operator_main

        operator_main.run(liveness=args.liveness, verbose=args.verbose)
    except SettingsError as exc:
        print(f"configuration: {exc}", file=sys.stderr)
        return 2
    return 0


def _controlplane(args: argparse.Namespace) -> int:
    from controlplane import cli as controlplane_cli

    return controlplane_cli.run(args)


def _ingest(args: argparse.Namespace) -> int:
    from ingestion import cli as ingestion_cli

    return ingestion_cli.run(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tenantry", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    op = sub.add_parser("operator", help="run the Tenant/Dashboard operator (kopf)")
    op.add_argument(
        "--liveness",
        default=None,
        help="liveness endpoint URL (default: the operator's settings, TENANTRY_LIVENESS)",
    )
    op.add_argument("--verbose", action="store_true")
    op.set_defaults(func=_operator)

    cl = sub.add_parser("cluster", help="local control plane (etcd, apiserver, kwok)")
    cl.add_argument("action", choices=["up", "down", "destroy", "status"])
    cl.add_argument("--state-dir", default=os.environ.get("TENANTRY_STATE", ".tenantry/dev"))
    cl.add_argument("--port-base", type=int, default=16440)
    cl.add_argument("--nodes", type=int, default=3)
    cl.set_defaults(func=_cluster)

    dv = sub.add_parser("dev", help="the whole product locally: cluster, control plane, operator")
    dv.add_argument("--state-dir", default=os.environ.get("TENANTRY_STATE", ".tenantry/dev"))
    dv.add_argument("--port-base", type=int, default=16440)
    dv.add_argument("--api-port", type=int, default=8000)
    dv.set_defaults(func=_dev)

    cr = sub.add_parser("crds", help="write the CRDs generated from the models")
    cr.add_argument("--out", default="crds")
    cr.set_defaults(func=_crds)

    # The control plane's and ingestion's options live in their own packages; importing
    # those (asyncpg, Redis, aiohttp's server, ...) only when that command runs keeps
    # them out of the operator's memory (14 MB).
    args_given = sys.argv[1:] if argv is None else argv
    command = next((a for a in args_given if not a.startswith("-")), None)
    cp = sub.add_parser("controlplane", help="the control plane API and its maintenance tasks")
    if command == "controlplane":
        from controlplane import cli as controlplane_cli

        controlplane_cli.add_arguments(cp)
    cp.set_defaults(func=_controlplane)

    ing = sub.add_parser(
        "ingest", help="the per-tenant ingestion service (HTTP -> Redis -> ClickHouse)"
    )
    if command == "ingest":
        from ingestion import cli as ingestion_cli

        ingestion_cli.add_arguments(ing)
    ing.set_defaults(func=_ingest)

    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())

"""``python -m tenantry_dev``: the local cluster and the whole product on this machine.

    python -m tenantry_dev cluster up|down|destroy|status [--state-dir DIR] [--nodes kwok|real]
    python -m tenantry_dev cluster load-image ARCHIVE... [--state-dir DIR]  # into a real node
    python -m tenantry_dev dev [--state-dir DIR] [--api-port N] [--operator-port N]
                               [--internal-port N]                 # make dev
    python -m tenantry_dev platform install|uninstall [--state-dir DIR | --kubeconfig PATH]
                               [--images local|official] [--timeout S]  # make platform-up

Dev-only, like the rest of this package: the runtime image has neither, and the
``tenantry`` command (``tenantry_cli``) never imports them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tenantry_dev import platform, stack
from tenantry_dev.cluster import LocalCluster, Ports


def _cluster(args: argparse.Namespace) -> int:
    cluster = LocalCluster(
        Path(args.state_dir),
        ports=Ports.fixed(args.port_base),
        nodes=args.kwok_nodes,
        node_kind=args.nodes,
    )
    if args.action != "load-image" and args.archives:
        print(f"cluster {args.action} takes no archive", file=sys.stderr)
        return 2
    if args.action == "up":
        cluster.up()
    elif args.action == "load-image":
        if not args.archives:
            print("cluster load-image ARCHIVE...: a docker-archive tarball", file=sys.stderr)
            return 2
        for archive in args.archives:
            print(cluster.load_image(Path(archive)))
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
    cluster = LocalCluster(Path(args.state_dir), ports=Ports.fixed(args.port_base))
    return stack.run(
        cluster,
        api_port=args.api_port,
        operator_port=args.operator_port,
        internal_port=args.internal_port,
    )


def _platform(args: argparse.Namespace) -> int:
    state = Path(args.state_dir)
    kubeconfig = Path(args.kubeconfig) if args.kubeconfig else state / "kubeconfig"
    if not kubeconfig.is_file():
        print(f"no kubeconfig at {kubeconfig}: start a cluster first", file=sys.stderr)
        return 2
    if args.action == "uninstall":
        platform.uninstall(kubeconfig, timeout=args.timeout)
        print("uninstalled")
        return 0
    if args.images == "local":
        images = platform.Images.local()
        platform.load(state, images.archives)
    else:
        images = platform.Images.official()
    platform.install(kubeconfig, images, timeout=args.timeout)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tenantry_dev", description="the local cluster and `make dev`"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    cl = sub.add_parser("cluster", help="local control plane (etcd, apiserver, kwok)")
    cl.add_argument("action", choices=["up", "down", "destroy", "status", "load-image"])
    cl.add_argument("archives", nargs="*", help="load-image: docker-archive tarballs")
    cl.add_argument("--state-dir", default=os.environ.get("TENANTRY_STATE", ".tenantry/dev"))
    cl.add_argument("--port-base", type=int, default=16440)
    cl.add_argument(
        "--nodes",
        choices=["kwok", "real"],
        default="kwok",
        help="kwok: simulated nodes; real: one real node (containerd, kubelet, kube-proxy,"
        " CoreDNS) in a network namespace of its own",
    )
    cl.add_argument("--kwok-nodes", type=int, default=3)
    cl.set_defaults(func=_cluster)

    dv = sub.add_parser("dev", help="the whole product locally: cluster, control plane, operator")
    dv.add_argument("--state-dir", default=os.environ.get("TENANTRY_STATE", ".tenantry/dev"))
    dv.add_argument("--port-base", type=int, default=16440)
    dv.add_argument("--api-port", type=int, default=8000)
    dv.add_argument("--operator-port", type=int, default=8080, help="the operator's liveness")
    dv.add_argument(
        "--internal-port", type=int, default=8001, help="the control plane's internal API"
    )
    dv.set_defaults(func=_dev)

    pf = sub.add_parser(
        "platform",
        help="Tenantry installed in a cluster with real nodes, as a platform team installs it",
    )
    pf.add_argument("action", choices=["install", "uninstall"])
    pf.add_argument(
        "--state-dir",
        default=os.environ.get("TENANTRY_STATE", ".tenantry/real"),
        help="the local real-node cluster (its kubeconfig; local images go into its node)",
    )
    pf.add_argument("--kubeconfig", help="another cluster (kind): its kubeconfig")
    pf.add_argument(
        "--images",
        choices=["local", "official"],
        default="local",
        help="local: this machine's images (stand-ins for ClickHouse and Keeper), imported "
        "into the real node; official: pulled by the cluster (kind)",
    )
    pf.add_argument("--timeout", type=float, default=300, help="seconds for each wait")
    pf.set_defaults(func=_platform)

    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())

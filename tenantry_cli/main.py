"""``tenantry``: one entry point: operator, control plane, ingestion, backup, restore, CRDs.

The top layer: it imports the operator, the control plane and ingestion (each only when
its command runs), which never import it or each other. The local cluster and `make dev`
are dev-only (``python -m tenantry_dev``), not part of this runtime entry point.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

# Commands that run once as a Job's process and then end.
JOB_COMMANDS = frozenset({"backup", "restore"})


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


def _backup(_args: argparse.Namespace) -> int:
    from tenantry_operator import backup_job

    return backup_job.main()


def _restore(_args: argparse.Namespace) -> int:
    from tenantry_operator import restore_job

    return restore_job.main()


def _ingest(args: argparse.Namespace) -> int:
    from ingestion import cli as ingestion_cli

    return ingestion_cli.run(args)


def _redis_exporter(_args: argparse.Namespace) -> int:
    from ingestion import redis_exporter

    return redis_exporter.run()


def main(argv: list[str] | None = None) -> int:
    summary = (__doc__ or "tenantry").split("\n", 1)[0]
    parser = argparse.ArgumentParser(prog="tenantry", description=summary)
    sub = parser.add_subparsers(dest="command", required=True)

    op = sub.add_parser("operator", help="run the Tenant/Dashboard operator (kopf)")
    op.add_argument(
        "--liveness",
        default=None,
        help="liveness endpoint URL (default: the operator's settings, TENANTRY_LIVENESS)",
    )
    op.add_argument("--verbose", action="store_true")
    op.set_defaults(func=_operator)

    bk = sub.add_parser(
        "backup",
        help="back up one tenant's ClickHouse to S3 and apply retention (the backup "
        "CronJob's command; settings from the environment)",
    )
    bk.set_defaults(func=_backup)

    rs = sub.add_parser(
        "restore",
        help="restore one of a tenant's backups from S3 into a tenant's ClickHouse (the "
        "restore Job's command; settings from the environment)",
    )
    rs.set_defaults(func=_restore)

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

    rx = sub.add_parser(
        "redis-exporter",
        help="Prometheus metrics of the tenant's Redis (the sidecar the operator renders "
        "next to it; settings from the environment)",
    )
    rx.set_defaults(func=_redis_exporter)

    args = parser.parse_args(argv)
    result: int = args.func(args)
    if argv is None and args.command in JOB_COMMANDS:
        end_job_process(result)
    return result


def end_job_process(code: int) -> NoReturn:
    """End a job's process once its work is done and said: its output flushed and
    logging shut down, then out without the interpreter's teardown of every module
    (boto3, pydantic, clickhouse-connect: 0.15-0.4 s of a restore's 1.3 s, measured in
    bench/README.md). The job closed its connections itself; nothing else is pending.
    Only for the process's own command line: callers of `main(argv)` get the code."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

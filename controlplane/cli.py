"""``tenantry controlplane …``: serve the API and run its maintenance tasks.

Each action is a small async function over the same settings the app uses, so an
operator runs ``migrate`` or ``audit-verify`` against exactly the database the service
talks to, with no separate tool or config file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import asyncpg

from controlplane import db
from controlplane.settings import Settings
from tenantry.settings import SettingsError, from_mapping


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="cp_action", required=True)
    serve = sub.add_parser("serve", help="run the API (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument(
        "--metrics-host",
        default=None,
        help="address of the internal Prometheus listener (default: TENANTRY_CP_METRICS_HOST "
        "or 127.0.0.1)",
    )
    serve.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="port of the internal Prometheus listener, 0 for none (default: "
        "TENANTRY_CP_METRICS_PORT or 9464); the public port never serves /metrics",
    )
    serve.add_argument(
        "--internal-host",
        default=None,
        help="address of the internal listener, the only one serving /internal/... "
        "(default: TENANTRY_CP_INTERNAL_HOST or 127.0.0.1)",
    )
    serve.add_argument(
        "--internal-port",
        type=int,
        default=None,
        help="port of the internal listener (default: TENANTRY_CP_INTERNAL_PORT or 8001)",
    )
    sub.add_parser("migrate", help="apply pending SQL migrations")
    verify = sub.add_parser("audit-verify", help="verify the audit hash chains")
    verify.add_argument("--chain", default=None, help="one chain (org:<id> or system)")
    sub.add_parser("rotate-key", help="make a new JWT signing key the active one")
    retire = sub.add_parser("retire-key", help="stop accepting tokens signed by a key")
    retire.add_argument(
        "kid", help="the key id; a kid may start with '-': write `retire-key -- <kid>`"
    )
    sub.add_parser(
        "close-periods",
        help="close and finalize last month's invoices once its late-usage window is over "
        "(idempotent; run it from a timer or CronJob)",
    )
    client = sub.add_parser("add-client", help="register or update a public OAuth client")
    client.add_argument("client_id")
    client.add_argument("--name", required=True)
    client.add_argument("--redirect-uri", action="append", required=True, dest="redirect_uris")


async def _migrate(settings: Settings) -> int:
    for name in await db.migrate_url(settings.database_url):
        print(f"applied {name}")
    print("database is up to date")
    return 0


async def _close_periods(settings: Settings) -> int:
    import datetime as dt

    from controlplane.billing import service as billing
    from controlplane.billing.access import BillingSettings

    grace = BillingSettings().policy().grace
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        numbers = await billing.close_due(
            pool, now=dt.datetime.now(dt.UTC), grace=grace, email=settings.smtp_host is not None
        )
    finally:
        await pool.close()
    for number in numbers:
        print(f"finalized {number}")
    print(f"{len(numbers)} invoice(s) finalized")
    return 0


async def _audit_verify(settings: Settings, chain: str | None) -> int:
    from controlplane.audit import service

    conn = await asyncpg.connect(settings.database_url)
    try:
        verdicts = await service.verify_all(conn, chain)
    finally:
        await conn.close()
    bad = 0
    for v in verdicts:
        if v.ok:
            print(f"ok      {v.chain}: {v.checked} events")
        else:
            bad += 1
            print(f"BROKEN  {v.chain}: {v.problem} (at seq {v.broken_at}; {v.checked} verified)")
    print(f"{len(verdicts)} chains, {bad} broken")
    return 1 if bad else 0


async def _keys(settings: Settings, action: str, kid: str | None) -> int:
    from controlplane.auth.keys import KeyRing

    pool = await db.create_pool(settings)
    try:
        ring = KeyRing(pool, settings)
        if action == "rotate-key":
            print(f"active key is now {await ring.rotate()}")
            return 0
        assert kid is not None
        if await ring.retire(kid):
            print(f"retired {kid}")
            return 0
        print(f"no verifying, inactive key {kid}", file=sys.stderr)
        return 1
    finally:
        await pool.close()


async def _add_client(settings: Settings, args: argparse.Namespace) -> int:
    from controlplane.auth import repository

    conn = await asyncpg.connect(settings.database_url)
    try:
        await repository.upsert_client(
            conn, client_id=args.client_id, name=args.name, redirect_uris=args.redirect_uris
        )
    finally:
        await conn.close()
    print(f"client {args.client_id} registered")
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    """uvicorn on two sockets, the public port and the internal listener, in every worker.

    One app answers both; ``controlplane.internal.ListenerGuard`` tells them apart by the
    port a request came in on. ``uvicorn.run`` binds a single socket, so this binds both
    and hands them to uvicorn's server (one worker) or its process supervisor."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from controlplane import metrics_listener

    metrics_host = args.metrics_host or settings.metrics_host
    metrics_port = settings.metrics_port if args.metrics_port is None else args.metrics_port
    internal_host = args.internal_host or settings.internal_host
    internal_port = settings.internal_port if args.internal_port is None else args.internal_port
    if internal_port == args.port:
        print(f"the public and internal ports are both {args.port}", file=sys.stderr)
        return 2
    # The app reads its settings from the environment in each worker.
    os.environ["TENANTRY_CP_INTERNAL_PORT"] = str(internal_port)

    def config(host: str, port: int) -> uvicorn.Config:
        return uvicorn.Config(
            "controlplane.app:from_environment",
            factory=True,
            host=host,
            port=port,
            workers=args.workers,
            access_log=False,
            # Client addresses come from our own rule only (clientaddr.py,
            # TRUST_FORWARDED_FOR + TRUSTED_PROXIES). uvicorn's would believe
            # X-Forwarded-For from loopback (FORWARDED_ALLOW_IPS) by default.
            proxy_headers=False,
        )

    public = config(args.host, args.port)
    sockets = [public.bind_socket(), config(internal_host, internal_port).bind_socket()]
    with metrics_listener.serving(metrics_host, metrics_port):
        if args.workers > 1:
            Multiprocess(public, sockets=sockets).run()
        else:
            public.load_app()
            server = uvicorn.Server(public)
            server.run(sockets=sockets)
            if not server.started:
                return 3
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        settings = from_mapping(Settings, os.environ)
    except SettingsError as exc:  # before any worker starts: one message naming the variables
        print(f"configuration: {exc}", file=sys.stderr)
        return 2
    action = args.cp_action
    if action == "serve":
        return _serve(settings, args)
    if action == "migrate":
        return asyncio.run(_migrate(settings))
    if action == "close-periods":
        return asyncio.run(_close_periods(settings))
    if action == "audit-verify":
        return asyncio.run(_audit_verify(settings, args.chain))
    if action in ("rotate-key", "retire-key"):
        return asyncio.run(_keys(settings, action, getattr(args, "kid", None)))
    return asyncio.run(_add_client(settings, args))

"""`tenantry ingest`: the ingestion pod's entry point (HTTP side and writer in one process).

Why one process by default: a tenant's ingestion Deployment scales with its
HPA, and every pod then both accepts events and writes them, so writers scale
with the load and a dead pod's pending entries are reclaimed by the others.
`--writer-only` and `--no-writer` split the two for deployments (and the
benchmark) that want them apart.

Configuration comes from the environment only (`ingestion.settings`).
Shutdown on SIGTERM: stop accepting requests, let the writer flush what it
holds, close Redis and ClickHouse.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

import tenacity
from aiohttp import web

from ingestion import auth, events, server
from ingestion import stream as stream_module
from ingestion.metrics import Metrics
from ingestion.settings import Settings, SettingsError, from_env
from ingestion.stream import Names, Stream
from ingestion.usage import ControlPlaneUsageSink, LogUsageSink, UsageSink
from ingestion.writer import AfterInsert, Writer
from tenantry import contract, ratelimit
from tenantry.clickhouse import layout, open_client, schema
from tenantry.clickhouse.client import AsyncClickHouse, ClickHouseClient
from tenantry.internal_client import InternalClient

logger = logging.getLogger("ingestion")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--writer-only",
        action="store_true",
        help="run the stream-to-ClickHouse writer (and /healthz, /metrics) only",
    )
    mode.add_argument(
        contract.INGEST_NO_WRITER_FLAG,
        dest="no_writer",
        action="store_true",
        help="accept events over HTTP but run no writer",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = from_env(os.environ)
    except SettingsError as exc:
        logger.error("configuration: %s", exc)
        return 2
    try:
        asyncio.run(serve(settings, accept_events=not args.writer_only, write=not args.no_writer))
    except ListenerError as exc:
        logger.error("%s", exc)
        return 1
    return 0


class ListenerError(Exception):
    """A listener's address cannot be bound (in use, or not an address of this host)."""


async def _bind(runner: web.AppRunner, host: str, port: int, *, what: str) -> None:
    try:
        await web.TCPSite(runner, host, port, backlog=1024).start()
    except OSError as exc:
        raise ListenerError(f"cannot listen on {host}:{port} ({what}): {exc.strerror}") from exc


def internal_client(settings: Settings) -> InternalClient | None:
    """The process's one client of the control plane's internal API, when one is set."""
    if settings.controlplane_url and settings.internal_token:
        return InternalClient(settings.controlplane_url, token=settings.internal_token)
    return None


def validator_for(settings: Settings, internal: InternalClient | None) -> auth.KeyValidator:
    if settings.key_digests:
        return auth.StaticKeyValidator(settings.key_digests, tenant=settings.tenant)
    assert internal is not None  # settings require a control plane without keys
    return auth.IntrospectionValidator(internal)


def _pause_hook(marker: str) -> AfterInsert:
    """Test-only (TENANTRY_INGEST_TEST_PAUSE_AFTER_INSERT): stop between insert and ack.

    Writes the inserted entry ids to `marker`, then waits forever, so a test can
    SIGKILL the process at exactly that point.
    """

    async def pause(ids: list[str]) -> None:
        await asyncio.to_thread(Path(marker).write_text, ",".join(ids))
        logger.warning("test pause after insert of %d entries", len(ids))
        await asyncio.Event().wait()

    return pause


def open_clickhouse(settings: Settings) -> ClickHouseClient:
    """The ClickHouse client, with the schema provisioned first when asked to."""
    client = open_client(settings.clickhouse_url)
    if settings.provision:
        report = layout.provision(
            client,
            schema.TenantSchema(
                database=settings.database,
                retention_days=settings.retention_days,
                cluster=settings.clickhouse_cluster,
            ),
        )
        logger.info("schema of %s provisioned (changed: %s)", settings.database, report.changed)
    return client


def _not_usable_yet(state: tenacity.RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    logger.warning("ClickHouse not usable yet (%s); retrying", str(exc)[:200])


class WriterRunner:
    """Opens ClickHouse (retrying while it is unreachable), then runs the writer.

    Why not fail at start: the point of the stream is that producers keep
    getting 202 while ClickHouse is down or not yet provisioned; the HTTP side
    must come up regardless and the writer catch up later.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        stream: Stream,
        metrics: Metrics,
        usage: UsageSink | None = None,
    ) -> None:
        self.settings = settings
        self.usage = usage or LogUsageSink()
        self.stream = stream
        self.metrics = metrics
        self.writer: Writer | None = None
        self._stopping = asyncio.Event()

    async def _open(self) -> ClickHouseClient | None:
        """The client once ClickHouse is usable: tried again 1 s after a failure,
        doubling up to 30 s, until it works or the runner stops (None)."""
        if self._stopping.is_set():
            return None
        opening = tenacity.AsyncRetrying(
            wait=tenacity.wait_exponential(multiplier=1.0, max=30.0),
            # unreachable, refused, not provisioned yet...
            retry=tenacity.retry_if_exception_type(Exception),
            stop=lambda _state: self._stopping.is_set(),
            sleep=self._pause,
            after=_not_usable_yet,
            retry_error_callback=lambda _state: None,
        )
        client: ClickHouseClient | None = await opening(
            asyncio.to_thread, open_clickhouse, self.settings
        )
        return client

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def run(self) -> None:
        client = await self._open()
        if client is None:
            return
        settings = self.settings
        self.writer = Writer(
            stream=self.stream,
            clickhouse=AsyncClickHouse(client),
            table=settings.table,
            consumer=settings.consumer,
            tenant=settings.tenant,
            metrics=self.metrics,
            usage=self.usage,
            flush_rows=settings.flush_rows,
            flush_seconds=settings.flush_seconds,
            claim_idle_seconds=settings.claim_idle_seconds,
            after_insert=_pause_hook(settings.pause_after_insert)
            if settings.pause_after_insert
            else None,
        )
        if self._stopping.is_set():
            self.writer.stop()
        try:
            await self.writer.run()
        finally:
            await self.writer.clickhouse.close()

    def stop(self) -> None:
        self._stopping.set()
        if self.writer is not None:
            self.writer.stop()


async def serve(settings: Settings, *, accept_events: bool = True, write: bool = True) -> None:
    metrics = Metrics()
    redis = stream_module.connect(
        host=settings.redis_host, port=settings.redis_port, password=settings.redis_password
    )
    stream = Stream(redis, Names.for_prefix(settings.stream_prefix))
    internal = internal_client(settings)
    validator = validator_for(settings, internal)
    ingest = server.Ingest(
        tenant=settings.tenant,
        stream=stream,
        validator=validator,
        metrics=metrics,
        limits=events.Limits(
            retention_days=settings.retention_days, max_events=settings.max_batch_events
        ),
        max_backlog=settings.max_backlog,
        retry_after_seconds=settings.retry_after_seconds,
        max_body_bytes=settings.max_body_bytes,
        idempotency_seconds=settings.idempotency_seconds,
        key_limit=server.KeyLimit(
            ratelimit.MovingWindow(redis),
            tenant=settings.tenant,
            limit=ratelimit.per_window(
                settings.rate_limit_per_key, settings.rate_limit_window_seconds
            ),
        ),
    )
    writer = (
        WriterRunner(settings, stream=stream, metrics=metrics, usage=usage_sink(settings, internal))
        if write
        else None
    )
    # The internal (metrics) listener is bound first, then the public one, and the
    # writer starts last: a process that cannot bind both exits (ListenerError) before
    # it has answered /readyz or accepted an event, instead of taking a batch (202)
    # and dying with it unwritten in the stream, as a taken metrics port once made it.
    metrics_runner = web.AppRunner(server.create_metrics_app(ingest), access_log=None)
    runner = web.AppRunner(
        server.create_app(ingest, accept_events=accept_events), **server.RUNNER_OPTIONS
    )
    try:
        await metrics_runner.setup()
        await runner.setup()
        await _bind(metrics_runner, *settings.metrics_address, what="metrics")
        await _bind(runner, settings.listen_host, settings.listen_port, what="events")
        logger.info(
            "ingestion for tenant %s on %s:%d (events: %s, writer: %s)",
            settings.tenant,
            settings.listen_host,
            settings.listen_port,
            accept_events,
            write,
        )
        await _until_stopped(writer, runner)
    finally:
        await runner.cleanup()  # again after _until_stopped: a no-op once cleaned
        await metrics_runner.cleanup()
        await validator.close()
        if internal is not None:
            await internal.aclose()
        await redis.aclose()


async def _until_stopped(writer: WriterRunner | None, events: web.AppRunner) -> None:
    """Run the writer (if any) until SIGTERM/SIGINT; then stop accepting events and let
    the writer flush what it holds."""
    writer_task = asyncio.create_task(writer.run()) if writer is not None else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stopped: asyncio.Task[object] = asyncio.create_task(stop.wait())
    waits: set[asyncio.Task[object]] = {stopped}
    if writer_task is not None:
        waits.add(writer_task)
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    logger.info("stopping")
    await events.cleanup()
    if writer is not None and writer_task is not None:
        writer.stop()
        await writer_task
    stopped.cancel()


def usage_sink(settings: Settings, internal: InternalClient | None) -> UsageSink:
    """Billing gets usage when the control plane and the tenant's organisation are known."""
    if internal is not None and settings.org_id:
        return ControlPlaneUsageSink(internal, org_id=settings.org_id)
    return LogUsageSink()

"""The batch writer: Redis Stream (consumer group) -> ClickHouse, at least once, deduplicated.

Why this shape:

- Entries are grouped into one insert by size (`flush_rows` events or
  `max_entries` entries) or age (`flush_seconds`), since ClickHouse wants few
  large inserts, not one per HTTP batch. The default of 200,000 rows matters
  for CPU: every part an insert creates is merged again in the background, so
  smaller inserts cost more per row (RowBinary on chDB, merges included: about
  1.5 µs per row with 200,000-row inserts, 2.8 µs with 50,000).
- Entries hold RowBinary, which concatenates: an insert is the entries' rows
  one after the other, handed to the client chunk by chunk, never parsed or
  joined here.
- Before inserting, the group is recorded in the in-flight journal
  (`Stream.begin_flush`); the deduplication token is a function of the entry
  ids (`stream.dedup_token`). After the insert succeeded, the entries are
  acked and deleted and the journal cleared in one script
  (`Stream.finish_flush`). A crash between insert and ack therefore leaves a
  journal naming exactly the entries of the insert; whoever finishes it (this
  consumer after a restart, or another pod reclaiming from a dead consumer)
  inserts the same entries with the same token, and ClickHouse drops the
  repeat (the events table keeps a deduplication window). Entries read but
  not yet journaled were never inserted, so any grouping is fine for them.
- Pending entries idle longer than `claim_idle_seconds` (their consumer is
  dead or stuck) are taken over with XAUTOCLAIM; entries that belong to
  another consumer's journal are replayed as that exact group.
- A failing insert is retried with the same group and token until it
  succeeds or the writer stops; nothing is acked before.
- Every insert carries `schema.EVENTS_INSERT_SETTINGS`: the engine leaves copies of
  an event within one insert to its merges and to FINAL reads, as it does copies in
  different inserts, instead of collapsing them while writing the part (see there).

Usage goes to billing through `UsageSink` after each acked flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import tenacity
from redis.exceptions import RedisError

from ingestion.metrics import Metrics
from ingestion.stream import JSON_EACH_ROW, ROWBINARY, Entry, Stream, dedup_token
from ingestion.usage import FlushUsage, UsageSink
from tenantry.clickhouse.client import AsyncClickHouse
from tenantry.clickhouse.schema import EVENTS_INSERT_SETTINGS

logger = logging.getLogger(__name__)

AfterInsert = Callable[[list[str]], Awaitable[None]]
READ_COUNT = 20
RECLAIM_COUNT = 100  # entries can be megabytes each: bounded replies


@dataclass
class _Pass:
    """What the writer's loop carries from one turn to the next."""

    buffer: list[Entry] = field(default_factory=list)
    started: bool = False
    oldest: float = 0.0
    next_reclaim: float = 0.0


def _redis_unavailable(state: tenacity.RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    logger.warning("writer: Redis unavailable (%s); retrying", type(exc).__name__)


def _gave_up(_state: tenacity.RetryCallState) -> None:
    return None


class Writer:
    def __init__(
        self,
        *,
        stream: Stream,
        clickhouse: AsyncClickHouse,
        table: str,
        consumer: str,
        tenant: str,
        metrics: Metrics,
        usage: UsageSink,
        flush_rows: int = 200_000,
        flush_seconds: float = 1.0,
        max_entries: int = 1_000,
        claim_idle_seconds: float = 60.0,
        after_insert: AfterInsert | None = None,
    ) -> None:
        self.stream = stream
        self.clickhouse = clickhouse
        self.table = table
        self.consumer = consumer
        self.tenant = tenant
        self.metrics = metrics
        self.usage = usage
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_entries = max_entries
        self.claim_idle_seconds = claim_idle_seconds
        self.after_insert = after_insert
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Consume until `stop()`; Redis outages are waited out (a turn that fails is
        tried again after 1 s), not fatal."""
        state = _Pass()
        turns = tenacity.AsyncRetrying(
            wait=tenacity.wait_fixed(1.0),
            retry=tenacity.retry_if_exception_type((RedisError, OSError)),
            stop=self._stopping,
            sleep=self._sleep,
            before_sleep=_redis_unavailable,
            retry_error_callback=_gave_up,  # stopped during an outage
        )
        while not self._stop.is_set():
            await turns(self._turn, state)
        if state.buffer:
            try:
                await self.flush(state.buffer)
            except (RedisError, OSError):
                logger.warning(
                    "writer: stopping with %d unflushed entries pending", len(state.buffer)
                )

    async def _turn(self, state: _Pass) -> None:
        """One turn: start (once), reclaim when due, flush when due, else read."""
        if self._stop.is_set():
            return
        if not state.started:
            await self.stream.ensure_group()
            await self.recover_own()
            state.buffer = await self._own_pending()
            state.oldest = time.monotonic()
            state.started = True
        now = time.monotonic()
        if now >= state.next_reclaim:
            claimed = await self.reclaim()
            if claimed and not state.buffer:
                state.oldest = now
            state.buffer.extend(claimed)
            state.next_reclaim = now + max(self.claim_idle_seconds / 4, 0.2)
        if state.buffer and self._due(state.buffer, state.oldest):
            await self.flush(state.buffer)
            state.buffer = []
            return
        wait = self.flush_seconds - (now - state.oldest) if state.buffer else self.flush_seconds
        block = max(1, min(int(wait * 1000), 1000))
        new = await self.stream.read_new(
            self.consumer, count=self._room(state.buffer), block_ms=block
        )
        if new and not state.buffer:
            state.oldest = time.monotonic()
        state.buffer.extend(new)

    def _stopping(self, _state: tenacity.RetryCallState) -> bool:
        return self._stop.is_set()

    def _room(self, buffer: list[Entry]) -> int:
        # small reads: parsing a reply runs on the event loop that also answers producers
        return max(1, min(READ_COUNT, self.max_entries - len(buffer)))

    def _due(self, buffer: list[Entry], oldest: float) -> bool:
        if len(buffer) >= self.max_entries:
            return True
        if sum(e.count for e in buffer) >= self.flush_rows:
            return True
        return time.monotonic() - oldest >= self.flush_seconds

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    async def _own_pending(self) -> list[Entry]:
        """Entries this consumer had read but not journaled before a restart."""
        return await self.stream.read_own_pending(self.consumer, count=self.max_entries)

    async def recover_own(self) -> None:
        """Finish this consumer's in-flight insert from a previous life, if any."""
        ids = (await self.stream.journals()).get(self.consumer)
        if not ids:
            return
        claimed = {e.id: e for e in await self.stream.claim(self.consumer, ids, min_idle_ms=0)}
        group = [claimed[i] for i in ids if i in claimed]
        logger.info("writer: replaying own in-flight insert of %d entries", len(group))
        if group:
            await self.flush(group)
        else:
            await self.stream.finish_flush(self.consumer, [])

    async def reclaim(self) -> list[Entry]:
        """Take over entries idle too long; replay other consumers' journaled groups.

        Returns the claimed entries that belong to no journal (never inserted).
        """
        claimed = await self.stream.autoclaim(
            self.consumer,
            min_idle_ms=int(self.claim_idle_seconds * 1000),
            count=min(self.max_entries, RECLAIM_COUNT),
        )
        if not claimed:
            return []
        self.metrics.reclaimed.inc(len(claimed))
        by_id = {e.id: e for e in claimed}
        for owner, ids in (await self.stream.journals()).items():
            if owner == self.consumer or not by_id.keys() & set(ids):
                continue
            missing = [i for i in ids if i not in by_id]
            if missing:
                for entry in await self.stream.claim(self.consumer, missing, min_idle_ms=0):
                    by_id[entry.id] = entry
            group = [by_id.pop(i) for i in ids if i in by_id]
            logger.info("writer: replaying %s's in-flight insert (%d entries)", owner, len(group))
            await self.flush(group, replaying=(owner, ids))
        logger.info("writer: took over %d idle entries", len(by_id))
        return sorted(by_id.values(), key=lambda e: tuple(int(p) for p in e.id.split("-")))

    async def flush(
        self, entries: list[Entry], *, replaying: tuple[str, list[str]] | None = None
    ) -> bool:
        """Insert `entries` as one deduplicated insert, then ack them. False if abandoned."""
        entries = list({e.id: e for e in entries}.values())  # a reclaim may repeat one
        owned = set(await self.stream.begin_flush(self.consumer, [e.id for e in entries]))
        group = [e for e in entries if e.id in owned]
        if len(group) != len(entries):
            logger.warning(
                "writer: %d entries were taken over meanwhile", len(entries) - len(group)
            )
        if not group:
            return True
        ids = [e.id for e in group]
        token = dedup_token(ids)
        events = sum(e.count for e in group)
        # Retried with the same group and token until it succeeds or the writer stops:
        # 0.5 s after a failure, doubling up to 10 s.
        inserting = tenacity.AsyncRetrying(
            wait=tenacity.wait_exponential(multiplier=0.5, max=10.0),
            retry=tenacity.retry_if_exception_type(Exception),  # any engine or network failure
            stop=self._stopping,
            sleep=self._sleep,
            after=self._insert_failed,
        )
        try:
            await inserting(self._insert, group)
        except tenacity.RetryError:  # stopped: the journal keeps the group for a later run
            return False
        if self.after_insert is not None:
            await self.after_insert(ids)
        await self.stream.finish_flush(self.consumer, ids)
        if replaying is not None:
            await self.stream.forget_journal(replaying[0], replaying[1])
        self.metrics.inserts.inc()
        self.metrics.inserted_rows.inc(events)
        self.metrics.writer_lag.set(time.time() - min(e.millis for e in group) / 1000)
        self.metrics.backlog.set(await self.stream.backlog())
        size = sum(e.size for e in group)
        usage = FlushUsage(
            tenant=self.tenant, events=events, bytes=size, entries=len(group), token=token
        )
        try:
            await self.usage.record(usage)
        except Exception:
            logger.exception("writer: usage sink failed (events are written)")
        return True

    def _insert_failed(self, state: tenacity.RetryCallState) -> None:
        self.metrics.insert_errors.inc()
        exc = state.outcome.exception() if state.outcome is not None else None
        logger.warning("writer: insert failed (%s); retrying", str(exc)[:200])

    async def _insert(self, group: list[Entry]) -> None:
        """The group as one insert per row format: one, unless the stream still holds
        JSONEachRow entries from before RowBinary. Each insert's token is a function of
        its entry ids, so a retry or a replay of the group is deduplicated part by part."""
        for fmt in (ROWBINARY, JSON_EACH_ROW):
            part = [e for e in group if e.fmt == fmt]
            if not part:
                continue
            token = dedup_token([e.id for e in part])
            settings = EVENTS_INSERT_SETTINGS
            if fmt == ROWBINARY:
                chunks = [e.rows for e in part]
                await self.clickhouse.insert_rowbinary(
                    self.table, chunks, dedup_token=token, settings=settings
                )
            else:
                data = b"".join(e.rows for e in part)
                await self.clickhouse.insert_json(
                    self.table, data, dedup_token=token, settings=settings
                )

"""The Redis Stream between the HTTP side and the writer, and its few atomic operations.

Why Lua scripts: each step that must not be split by a crash or by another
pod is one script, so Redis runs it atomically:

- `append`: check the backlog bound and XADD the batch (one entry per HTTP
  batch) in one round trip: 429 or an entry id, never both. (When the backlog
  is known to be far under the bound, a plain XADD instead: see `append`.)
  With an idempotency key it also looks the key up first and records it with the
  XADD, so a batch sent again under the same key is appended once, whichever pod
  gets each copy (`Idempotency`).
- `begin_flush`: keep only the entries this consumer still owns and record
  them in the in-flight journal (a hash: consumer -> comma-joined entry ids)
  *before* the insert. The journal is what makes a retried insert identical:
  whoever finishes a crashed consumer's flush inserts exactly the same entries
  with exactly the same deduplication token, so ClickHouse drops the repeat.
- `finish_flush`: XACK, XDEL and clear the journal together, after the insert.
  Acked entries are deleted, so XLEN is the backlog (unwritten + in flight).
- `forget_journal`: remove another consumer's journal only if it still holds
  what we replayed (compare-and-delete).

Entry fields: `rowbinary` (the batch's rows for the events table in
ClickHouse's RowBinary, see `ingestion.events`), `n` (event count), `bytes`
(the size of the request body the events came in, for usage), `batch` (the
batch id returned to the producer). Entries written before RowBinary carry
`rows` (JSONEachRow) instead of `rowbinary` and no `bytes`; the writer still
inserts them.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

_APPEND = """
if KEYS[2] then
  local seen = redis.call('GET', KEYS[2])
  if seen then return {'', redis.call('XLEN', KEYS[1]), seen} end
end
local len = redis.call('XLEN', KEYS[1])
if len >= tonumber(ARGV[1]) then return {'', len} end
local id = redis.call(
  'XADD', KEYS[1], '*', 'rowbinary', ARGV[2], 'n', ARGV[3], 'bytes', ARGV[4], 'batch', ARGV[5])
if KEYS[2] then redis.call('SET', KEYS[2], ARGV[6], 'EX', ARGV[7]) end
return {id, len + 1}
"""

_BEGIN = """
local owned = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then table.insert(owned, ARGV[i]) end
end
if #owned > 0 then
  redis.call('HSET', KEYS[2], ARGV[2], table.concat(owned, ','))
else
  redis.call('HDEL', KEYS[2], ARGV[2])
end
return owned
"""

_FINISH = """
local ids = {}
for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
local acked = 0
if #ids > 0 then
  acked = redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
  redis.call('XDEL', KEYS[1], unpack(ids))
end
redis.call('HDEL', KEYS[2], ARGV[2])
return acked
"""

_FORGET = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""

GROUP = "writers"


def connect(*, host: str, port: int, password: str | None = None) -> Redis:
    """A Redis client that fails fast and queues for connections instead of failing.

    One quick retry, then the caller answers 503: redis-py's default retries
    with backoff up to seconds, which would hold producers' requests open
    during an outage instead of telling them to retry. The pool is bounded
    and blocking, so a burst of requests waits for a connection (up to 5 s)
    rather than failing with MaxConnectionsError.
    """
    pool = BlockingConnectionPool(
        max_connections=64,
        timeout=5,
        host=host,
        port=port,
        password=password,
        socket_timeout=5,
        socket_connect_timeout=1,
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), retries=1),
    )
    return Redis(connection_pool=pool)


@dataclass(frozen=True)
class Names:
    """Redis keys of one tenant's ingestion."""

    stream: str
    journal: str
    group: str = GROUP
    idempotency: str = ""  # prefix of the idempotency keys (`idempotency_key`)

    @classmethod
    def for_prefix(cls, prefix: str) -> Names:
        return cls(
            stream=f"{prefix}:events", journal=f"{prefix}:inflight", idempotency=f"{prefix}:idem"
        )

    def idempotency_key(self, api_key: str, key: str) -> str:
        """The Redis key remembering a producer's idempotency ``key``: scoped to the API
        key that sent it (two keys of one tenant never collide), both hashed (no secret
        and no producer text in Redis key names)."""
        scope = hashlib.sha256(api_key.encode()).hexdigest()[:32]
        ident = hashlib.sha256(key.encode()).hexdigest()[:32]
        return f"{self.idempotency}:{scope}:{ident}"


ROWBINARY = "RowBinary"
JSON_EACH_ROW = "JSONEachRow"


@dataclass(frozen=True)
class Entry:
    """One accepted batch, as read back from the stream.

    `rows` are in `fmt` (RowBinary, or JSONEachRow for entries written before it);
    `size` is what usage counts as the batch's bytes.
    """

    id: str
    rows: bytes
    count: int
    fmt: str = ROWBINARY
    size: int = 0

    @property
    def millis(self) -> int:
        """When Redis appended it (the time part of the id), in ms since the epoch."""
        return int(self.id.split("-", 1)[0])


def entry_from(entry_id: bytes | str, fields: dict[bytes, bytes] | None) -> Entry | None:
    """An Entry from redis-py's (id, fields) pair; None for a deleted entry."""
    ident = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    if not fields:
        return None
    count = int(fields[b"n"])
    rows = fields.get(b"rowbinary")
    if rows is not None:
        return Entry(ident, rows, count, ROWBINARY, int(fields.get(b"bytes", len(rows))))
    rows = fields[b"rows"]
    return Entry(ident, rows, count, JSON_EACH_ROW, len(rows))


def dedup_token(ids: list[str]) -> str:
    """The insert's deduplication token: a function of its entry ids only.

    The same entries give the same token whoever inserts them, so a replay
    after a crash is dropped by ClickHouse (the table keeps a dedup window).
    """
    digest = hashlib.sha256(",".join(ids).encode()).hexdigest()[:32]
    return f"ingest:{ids[0]}:{len(ids)}:{digest}"


@dataclass(frozen=True)
class Idempotency:
    """A producer's idempotency key, as the append records it: ``key`` (the Redis key,
    already scoped to the tenant and the API key), ``record`` (what a replay answers
    from) and ``ttl`` (seconds it is remembered)."""

    key: str
    record: str
    ttl: int


@dataclass(frozen=True)
class Appended:
    """What an append did: ``entry`` (its stream id; None when refused for the backlog
    or when ``replayed``), ``backlog`` (stream length after it) and ``replayed`` (the
    record of the earlier append under the same idempotency key; nothing was added)."""

    entry: str | None
    backlog: int
    replayed: str | None = None


class Stream:
    """The stream operations the HTTP side and the writer use."""

    def __init__(self, redis: Redis, names: Names) -> None:
        self.redis = redis
        self.names = names
        self._append = redis.register_script(_APPEND)
        self._begin = redis.register_script(_BEGIN)
        self._finish = redis.register_script(_FINISH)
        self._forget = redis.register_script(_FORGET)
        self._seen: tuple[float, int] | None = None  # (when, backlog) after our last append
        self._appending = 0

    async def append(
        self,
        rows: bytes,
        *,
        count: int,
        size: int,
        batch_id: str,
        max_backlog: int,
        idempotency: Idempotency | None = None,
    ) -> Appended:
        """Append RowBinary `rows` unless over the bound (then ``entry`` is None), or,
        with `idempotency`, unless that key was recorded already (then ``replayed``
        holds its record). `size` is the request body's length (for usage).

        The bound is checked atomically with the XADD (the `_APPEND` script) unless
        the backlog this process saw after an append less than a second ago, plus
        its appends in flight, is under half of the bound: then a plain XADD
        (pipelined with XLEN, one round trip) does, because a script costs Redis
        twice the CPU of the XADD itself (the batch is copied into Lua and back:
        about 0.3 µs per event). The bound still holds unless other processes
        append half of it within that second. A request with an idempotency key always takes
        the script: the lookup, the XADD and the record are one atomic step.
        """
        seen = self._seen
        fields = {"rowbinary": rows, "n": count, "bytes": size, "batch": batch_id}
        if (
            idempotency is None
            and seen is not None
            and time.monotonic() - seen[0] < 1.0
            and seen[1] + self._appending < max_backlog // 2
        ):
            self._appending += 1
            try:
                pipe = self.redis.pipeline(transaction=False)
                pipe.xadd(self.names.stream, fields)  # type: ignore[arg-type]
                pipe.xlen(self.names.stream)
                ident, length = await pipe.execute()
            finally:
                self._appending -= 1
            self._seen = (time.monotonic(), int(length))
            return Appended(_text(ident), int(length))
        keys = [self.names.stream]
        args: list[Any] = [max_backlog, rows, count, size, batch_id]
        if idempotency is not None:
            keys.append(idempotency.key)
            args += [idempotency.record, idempotency.ttl]
        reply: Any = await self._append(keys=keys, args=args)
        ident = _text(reply[0])
        self._seen = (time.monotonic(), int(reply[1]))
        replayed = _text(reply[2]) if len(reply) > 2 else None
        return Appended(ident or None, int(reply[1]), replayed)

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(
                self.names.stream, self.names.group, id="0", mkstream=True
            )
        except Exception as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def begin_flush(self, consumer: str, ids: list[str]) -> list[str]:
        """The ids still owned by `consumer`, now recorded as its in-flight insert."""
        reply: Any = await self._begin(
            keys=[self.names.stream, self.names.journal], args=[self.names.group, consumer, *ids]
        )
        return [i.decode() if isinstance(i, bytes) else str(i) for i in reply]

    async def finish_flush(self, consumer: str, ids: list[str]) -> int:
        reply: Any = await self._finish(
            keys=[self.names.stream, self.names.journal], args=[self.names.group, consumer, *ids]
        )
        return int(reply)

    async def journals(self) -> dict[str, list[str]]:
        raw: Any = await self.redis.hgetall(self.names.journal)
        return {_text(k): _text(v).split(",") for k, v in raw.items() if v}

    async def forget_journal(self, consumer: str, ids: list[str]) -> None:
        await self._forget(keys=[self.names.journal], args=[consumer, ",".join(ids)])

    async def read_new(self, consumer: str, *, count: int, block_ms: int) -> list[Entry]:
        reply: Any = await self.redis.xreadgroup(
            self.names.group, consumer, {self.names.stream: ">"}, count=count, block=block_ms
        )
        return _entries(reply)

    async def read_own_pending(self, consumer: str, *, count: int) -> list[Entry]:
        """Entries delivered to `consumer` earlier and not acked (after a restart)."""
        reply: Any = await self.redis.xreadgroup(
            self.names.group, consumer, {self.names.stream: "0"}, count=count
        )
        return _entries(reply)

    async def claim(self, consumer: str, ids: list[str], *, min_idle_ms: int) -> list[Entry]:
        reply: Any = await self.redis.xclaim(
            self.names.stream, self.names.group, consumer, min_idle_ms, list[Any](ids)
        )
        return [e for e in (entry_from(i, f) for i, f in reply) if e is not None]

    async def autoclaim(self, consumer: str, *, min_idle_ms: int, count: int) -> list[Entry]:
        """Pending entries idle longer than `min_idle_ms`, whoever held them."""
        claimed: list[Entry] = []
        start = "0-0"
        while True:
            reply: Any = await self.redis.xautoclaim(
                self.names.stream,
                self.names.group,
                consumer,
                min_idle_ms,
                start_id=start,
                count=count,
            )
            claimed.extend(e for e in (entry_from(i, f) for i, f in reply[1]) if e is not None)
            start = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
            if start == "0-0" or len(claimed) >= count:
                return claimed

    async def backlog(self) -> int:
        return int(await self.redis.xlen(self.names.stream))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entries(reply: Any) -> list[Entry]:
    entries: list[Entry] = []
    for _stream, items in reply or []:
        entries.extend(e for e in (entry_from(i, f) for i, f in items) if e is not None)
    return entries

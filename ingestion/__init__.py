"""Tenantry's per-tenant ingestion service: events over HTTP into ClickHouse via a Redis Stream.

- `events`: decoding and validation of producer events, rows for the events table.
- `auth`: API keys (control-plane introspection, or static digests).
- `server`: the aiohttp app (`POST /v1/events`, `/healthz`, `/readyz`, `/metrics`).
- `stream`: the Redis Stream, its consumer group and in-flight journal (Lua).
- `writer`: stream -> ClickHouse, batched, deduplicated, acked after insert.
- `usage`: the hook to billing; `metrics`: Prometheus; `settings`: environment.
- `cli`: `tenantry ingest` (`add_arguments`, `run`).
"""

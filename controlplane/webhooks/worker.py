"""The delivery worker: sends the outbox's due deliveries, at each turn of the control
plane's background sender (one loop per process, ``controlplane/notifications/worker.py``).

Each turn claims up to ``webhook_batch`` due deliveries (``repository.claim``: FOR
UPDATE SKIP LOCKED, then a lease of the request timeout plus a margin), so any number
of processes share the outbox without sending a delivery twice at once; a process that
dies mid-request leaves a lease that runs out, and another process sends the delivery
(receivers deduplicate on ``webhook-id``, the same on every attempt). No transaction is
held during a request. Every attempt is recorded (status, time, a short excerpt of the
answer); a 2xx answer delivers, anything else (no answer within the timeout, a
redirect, a refused target) schedules the next try after the settings' retry
schedule; after the last try the delivery fails, its webhook is disabled and the
organisation gets a notification saying so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import asyncpg
import httpx

from controlplane import db
from controlplane.auth import crypto
from controlplane.notifications import service as notifications
from controlplane.settings import Settings
from controlplane.webhooks import repository, signing, targets

log = logging.getLogger("tenantry.controlplane.webhooks")
EXCERPT_BYTES = 256
LEASE_MARGIN_SECONDS = 30.0
USER_AGENT = "Tenantry-Webhooks/1"


class _Unsendable(Exception):
    """This control plane cannot send the delivery; ``str()`` is safe to store."""


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    excerpt: str
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class DeliveryWorker:
    """Sends the outbox's due webhook deliveries, a batch per ``turn``; run by the
    control plane's background sender (``controlplane/notifications/worker.py``)."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, *, email: bool = False) -> None:
        self.pool = pool
        # Whether a webhook disabled after its last try is also e-mailed to the owners.
        self.email = email
        self.policy = targets.Policy(
            allow_http=settings.webhook_allow_http,
            allow_private=settings.webhook_allow_private_targets,
        )
        self.timeout = settings.webhook_timeout_seconds
        self.schedule = list(settings.webhook_retry_schedule_seconds)
        self.batch = settings.webhook_batch
        key = settings.signing_key_secret
        self.seal_key = key.get_secret_value() if key is not None else None

    def client(self) -> httpx.AsyncClient:
        """The HTTP client deliveries go out on (no redirects, no proxy from the env)."""
        return httpx.AsyncClient(timeout=self.timeout, follow_redirects=False, trust_env=False)

    async def turn(self, client: httpx.AsyncClient) -> int:
        """Claim and send one batch; returns how many were claimed."""
        async with db.transaction(self.pool) as conn:
            claimed = await repository.claim(
                conn, limit=self.batch, lease_seconds=self.timeout + LEASE_MARGIN_SECONDS
            )
        results = await asyncio.gather(
            *(self._deliver(client, c) for c in claimed), return_exceptions=True
        )
        for claimed_row, result in zip(claimed, results, strict=True):
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                log.warning(
                    "webhook delivery %s failed: %s", claimed_row.msg_id, type(result).__name__
                )
        return len(claimed)

    async def _deliver(self, client: httpx.AsyncClient, claimed: repository.Claimed) -> None:
        outcome = await self.send(client, claimed)
        tries = claimed.tries + 1
        host = urlsplit(claimed.url).hostname or ""
        log.info(
            "webhook delivery %s to %s: %s",
            claimed.msg_id,
            host,
            outcome.status_code if outcome.status_code is not None else outcome.error,
        )
        async with db.transaction(self.pool) as conn:
            await repository.record_attempt(
                conn,
                delivery_id=claimed.id,
                duration_ms=outcome.duration_ms,
                status_code=outcome.status_code,
                error=outcome.error,
                excerpt=outcome.excerpt,
            )
            if outcome.delivered:
                await repository.finish(conn, claimed.id, state="delivered", tries=tries)
            elif tries <= len(self.schedule):
                wait = timedelta(seconds=self.schedule[tries - 1])
                await repository.finish(
                    conn,
                    claimed.id,
                    state="pending",
                    tries=tries,
                    next_attempt_at=datetime.now(UTC) + wait,
                )
            else:
                await repository.finish(conn, claimed.id, state="failed", tries=tries)
                reason = f"{tries} failed attempts of delivery {claimed.msg_id}"
                disabled = await repository.disable(conn, claimed.webhook_id, reason)
                if disabled is not None:
                    log.warning("webhook %s to %s disabled: %s", claimed.webhook_id, host, reason)
                    await notifications.webhook_disabled(
                        conn,
                        org_id=claimed.org_id,
                        webhook_id=claimed.webhook_id,
                        host=host,
                        reason=reason,
                        email=self.email,
                    )

    async def send(self, client: httpx.AsyncClient, claimed: repository.Claimed) -> Outcome:
        """One attempt: check the target again, sign, POST, read a short excerpt."""
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        excerpt = b""
        try:
            async with asyncio.timeout(self.timeout):
                resolved = await targets.resolve(claimed.url, self.policy)
                try:
                    secret = crypto.unseal(claimed.sealed_secret, self.seal_key)
                except RuntimeError:
                    raise _Unsendable("secret not decryptable (SIGNING_KEY_SECRET)") from None
                body = claimed.body.encode()
                headers = signing.headers(
                    secret, msg_id=claimed.msg_id, timestamp=int(time.time()), body=body
                )
                headers["host"] = targets.host_header(claimed.url)
                headers["user-agent"] = USER_AGENT
                extensions = (
                    {"sni_hostname": resolved.host} if resolved.url.startswith("https:") else {}
                )
                request = client.build_request(
                    "POST", resolved.url, content=body, headers=headers, extensions=extensions
                )
                response = await client.send(request, stream=True)
                try:
                    status = response.status_code
                    async for chunk in response.aiter_raw():
                        excerpt += chunk
                        if len(excerpt) >= EXCERPT_BYTES:
                            break
                finally:
                    await response.aclose()
        except targets.TargetRefused as exc:
            error = f"target refused: {exc}"
        except _Unsendable as exc:
            error = str(exc)
        except TimeoutError:
            status, error = None, "timeout"
        except httpx.TimeoutException:
            status, error = None, "timeout"
        except httpx.HTTPError as exc:
            status, error = None, type(exc).__name__
        except OSError as exc:
            status, error = None, type(exc).__name__
        text = excerpt[:EXCERPT_BYTES].decode("utf-8", errors="replace").replace("\x00", "")
        return Outcome(
            status_code=status,
            error=error,
            excerpt=text,
            duration_ms=int((time.monotonic() - started) * 1000),
        )

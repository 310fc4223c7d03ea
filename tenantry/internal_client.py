"""The one client of the control plane's internal API (operator and ingestion pods).

Before, four clients did this job, three of them opening a new HTTP session (and TCP
connection) per call: the operator's plan limits and usage reports, the ingestion pods'
usage reports and key introspection. Now each process holds one ``InternalClient``:

- one long-lived ``httpx2.AsyncClient`` (a pooled keep-alive connection) per process,
  closed by ``aclose()`` when the process stops. httpx2, not httpx: it is the client
  lightkube is built on, so the operator and the control plane have it loaded anyway;
  httpx would be a second HTTP stack in each process (and, where click, rich and
  pygments are installed, its command line's modules too): 4 MiB of the operator's
  memory (bench/README.md);
- explicit timeouts on every call (connect, read, write and pool), per call kind;
- retries through tenacity, on what a later attempt can fix: transport errors
  (connection refused or reset, timeouts) and 5xx answers. Every call here is safe to
  repeat: reads, and usage batches whose events carry idempotency keys. A 4xx is never
  retried. How many attempts each call makes is the caller's ``Retry``;
- bodies and answers are the pydantic models of ``tenantry.internal_api``, the ones the
  control plane serves.

Errors: ``Unavailable`` when no usable answer came (after the retries); its subclass
``Refused`` carries a 4xx status the caller must not retry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2 as httpx
import tenacity
from pydantic import BaseModel, ValidationError

from tenantry import internal_api
from tenantry.internal_api import Introspection, IntrospectRequest, OrgLimitsOut, UsageBatch

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3.0
M = TypeVar("M", bound=BaseModel)


class Unavailable(Exception):
    """No usable answer: unreachable, timed out, a 5xx after the retries, or a body that
    is not the contract's."""


class Refused(Unavailable):
    """The control plane answered a 4xx (never retried). ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Retry:
    """How a call is retried: ``attempts`` in all (1: no retry), waiting ``first_delay``
    after the first failure, doubling up to ``max_delay``."""

    attempts: int = 1
    first_delay: float = 0.5
    max_delay: float = 5.0


ONCE = Retry()


class _ServerError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TransportError | _ServerError)


class InternalClient:
    """The control plane's internal routes, with the internal service token."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(10.0, connect=CONNECT_TIMEOUT),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> InternalClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        seconds: float,
        retry: Retry,
    ) -> httpx.Response:
        """The first answer below 500, retrying transport errors and 5xx per ``retry``."""
        content = body.model_dump_json().encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else None
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(retry.attempts),
            wait=tenacity.wait_exponential(multiplier=retry.first_delay, max=retry.max_delay),
            retry=tenacity.retry_if_exception(_retryable),
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    resp = await self._http.request(
                        method,
                        path,
                        content=content,
                        headers=headers,
                        timeout=httpx.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT)),
                    )
                    if resp.status_code >= 500:
                        raise _ServerError(resp)
                    return resp
        except _ServerError as err:
            raise Unavailable(f"{method} {path}: {err}") from err
        except httpx.TransportError as err:
            raise Unavailable(f"{method} {path}: {type(err).__name__} {err}".rstrip()) from err
        raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover

    async def org_limits(self, org_id: str, *, retry: Retry = ONCE) -> OrgLimitsOut | None:
        """The organisation's plan limits; None when the control plane knows no such
        organisation (404)."""
        path = internal_api.limits_path(org_id)
        resp = await self._send("GET", path, seconds=5.0, retry=retry)
        if resp.status_code == 404:
            return None
        _expect_ok(resp, path)
        return _parse(OrgLimitsOut, resp, path)

    async def report_usage(
        self, org_id: str, batch: UsageBatch, *, retry: Retry = ONCE
    ) -> internal_api.UsageResult:
        """Submit one usage batch to the organisation's billing (idempotent by the
        events' keys, hence safe to retry)."""
        path = internal_api.usage_path(org_id)
        resp = await self._send("POST", path, body=batch, seconds=10.0, retry=retry)
        _expect_ok(resp, path)
        return _parse(internal_api.UsageResult, resp, path)

    async def introspect(self, key: str, *, retry: Retry = ONCE) -> Introspection | None:
        """What an API key is; None when the control plane refuses it as unknown or
        malformed (400, 404, 422). Its own refusal of our token (401, 403) is a
        ``Refused``: the key could not be checked."""
        path = internal_api.INTROSPECT_PATH
        body = IntrospectRequest.model_construct(key=key)  # validated by the server
        resp = await self._send("POST", path, body=body, seconds=3.0, retry=retry)
        if resp.status_code in (400, 404, 422):
            return None
        _expect_ok(resp, path)
        return _parse(Introspection, resp, path)


def _expect_ok(resp: httpx.Response, path: str) -> None:
    if resp.status_code >= 300:
        raise Refused(resp.status_code, f"{resp.request.method} {path}: HTTP {resp.status_code}")


def _parse(model: type[M], resp: httpx.Response, path: str) -> M:
    try:
        return model.model_validate_json(resp.content)
    except ValidationError as err:
        raise Unavailable(f"{path}: the answer is not a {model.__name__}") from err


def _log_retry(state: tenacity.RetryCallState) -> None:
    exc: Any = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning(
        "internal API call failed (attempt %d: %s); retrying in %.1f s",
        state.attempt_number,
        f"{type(exc).__name__} {exc}".rstrip(),
        wait,
    )

"""Control-plane settings, read from ``TENANTRY_CP_*`` environment variables.

Every value has an embedded default that works for a local run (PostgreSQL and Redis on
loopback, the kubeconfig from ``KUBECONFIG``), so ``tenantry controlplane serve`` starts
without a config file. The app factory takes a ``Settings`` object instead of reading the
environment itself, which lets tests build one app per fixture with its own servers.
"""

from __future__ import annotations

from email.utils import parseaddr
from pathlib import Path
from typing import Annotated

from pydantic import Field, IPvAnyNetwork, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the control plane needs to know about its surroundings."""

    model_config = SettingsConfigDict(
        env_prefix="TENANTRY_CP_", extra="ignore", frozen=True, use_attribute_docstrings=True
    )

    database_url: str = "postgresql://postgres@127.0.0.1:5432/tenantry"
    """asyncpg DSN of the PostgreSQL database that holds users, orgs, roles and audit."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    """Redis for refresh-token families, authorization codes and rate limits."""
    kubeconfig: str | None = None
    """Path to a kubeconfig; unset means lightkube's default (KUBECONFIG, in-cluster)."""
    kube_enabled: bool = True
    """False runs without Kubernetes (tenant and dashboard routes answer 503)."""
    kube_watch: bool = True
    """Serve tenant and dashboard reads from a watch-fed mirror (False: always ask the
    API server)."""

    issuer: str = "http://127.0.0.1:8000"
    """The ``iss`` claim of access tokens, checked on every request."""
    audience: str = "tenantry-api"
    """The ``aud`` claim of access tokens, checked on every request."""
    access_token_ttl_seconds: int = Field(default=3600, ge=60, le=3600)
    """Access tokens live one hour at most."""
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=300)
    """Lifetime of a refresh-token family since its last use."""
    auth_code_ttl_seconds: int = Field(default=60, ge=10, le=600)
    """OAuth authorization codes are single-use and short-lived."""
    signing_algorithm: str = Field(default="EdDSA", pattern="^(EdDSA|ES256)$")
    """Algorithm of newly generated signing keys."""
    signing_key_secret: SecretStr | None = None
    """A Fernet key (``cryptography.fernet.Fernet.generate_key()``) that encrypts the JWT
    signing keys and the webhooks' signing secrets at rest. Unset stores them in clear:
    acceptable for local runs only."""
    key_refresh_seconds: float = Field(default=60.0, ge=0)
    """How often each process reloads the signing keys (picks up rotations)."""

    cors_origins: list[str] = Field(default_factory=list)
    """Origins allowed by CORS (exact match); empty disables CORS headers."""
    console_dir: Path | None = None
    """The built web console (``console/dist``; ``/opt/tenantry/share/console`` in the
    image), served on the API's origin under a strict Content-Security-Policy
    (``controlplane/console.py``). Unset: no console, the API alone."""
    rate_limit_per_ip: int = Field(default=30, ge=1)
    """Requests per window to one auth route from one IP address."""
    rate_limit_per_identity: int = Field(default=10, ge=1)
    """Requests per window to one auth route for one identity (e-mail or client)."""
    rate_limit_per_client: int = Field(default=300, ge=1)
    """Requests per window to the OAuth token endpoint for one ``client_id`` (codes, and
    refresh tokens that name no account). Every user of a public client shares it, so it
    is larger than the per-identity limit."""
    rate_limit_panel_queries_per_org: int = Field(default=1200, ge=1)
    """Panel queries (data and chart.svg, cached or not) per window of one organisation:
    each organisation has its own budget, so one cannot slow another's dashboards."""
    rate_limit_window_seconds: int = Field(default=60, ge=1)
    """Every rate limit counts the requests of the last this many seconds (a moving
    window: no burst of twice the limit where two fixed windows meet)."""

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest request body (bytes) of every route but the few below. A larger declared
    ``Content-Length`` is refused with 413 before the body is read; a streamed (chunked)
    body is refused as soon as it passes the limit (``bodylimit.py``)."""
    max_large_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Body limit of the routes whose valid bodies can be larger (``x-body-limit: large``
    in the OpenAPI document): dashboard create and replace (50 panels of up to 20 000
    characters of SQL; Kubernetes stores objects up to 1.5 MiB) and usage batches (5 000
    events, up to about 3 MiB). At least ``max_body_bytes``."""
    trust_forwarded_for: bool = False
    """Take the client address (per-IP rate limits, audit trail) from X-Forwarded-For,
    for requests whose connection comes from one of ``trusted_proxies``: the header is
    read from the right, trusted proxies skipped, and the first other address is the
    client (``clientaddr.py``). False: always the connection's peer, whatever the
    headers say. uvicorn's own proxy-header handling is always off."""
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    """The proxies in front of the control plane (ingress controller, load balancer):
    addresses or networks, a JSON list such as ``["10.0.0.0/8", "127.0.0.1"]``.
    Required with ``trust_forwarded_for``; list only what a client cannot connect
    from, or the client can write its own address."""

    metrics_host: str = "127.0.0.1"
    """Address of the internal Prometheus listener (``serve --metrics-host``); a pod that
    Prometheus scrapes listens on 0.0.0.0."""
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    """Port of the internal Prometheus listener (``serve --metrics-port``; 0: none). The
    public port never serves ``/metrics``."""

    internal_host: str = "127.0.0.1"
    """Address of the internal listener (``serve --internal-host``), which alone serves the
    internal API (``/internal/...``: API-key introspection, plan limits, usage from the
    ingestion pods and the operator); a pod listens on 0.0.0.0, behind a Service of its
    own that no Ingress exposes."""
    internal_port: int = Field(default=8001, ge=1, le=65535)
    """Port of the internal listener (``serve --internal-port``). The public port answers
    every ``/internal/`` path 404, and this one every other path but the probes."""

    public_url: str | None = None
    """Base URL of the web UI. Invitation e-mails link to
    ``<public_url>/invitations/accept#token=<token>``; required with ``smtp_host``."""
    smtp_host: str | None = None
    """SMTP server for invitation e-mails and for the e-mails of notifications to each
    organisation's owners. Unset: nothing is sent (no notification e-mail is queued),
    and the API response (which always carries the token) is the only way to hand an
    invitation on."""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    """Port of the SMTP server (587: submission with STARTTLS)."""
    smtp_from: str | None = None
    """The From address (``Tenantry <noreply@example.com>`` or a bare address); required
    with ``smtp_host``."""
    smtp_username: str | None = None
    """SMTP AUTH user; unset: no authentication."""
    smtp_password: SecretStr | None = None
    """SMTP AUTH password; set with ``smtp_username``."""
    smtp_starttls: bool = True
    """Upgrade the connection with STARTTLS (required when true; false sends in clear
    text: only for a relay on the same host or network)."""
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    """Limit of one delivery; the invitation response waits for it (notification
    e-mails are sent by the background sender, retried on the webhook retry schedule)."""

    webhook_allow_http: bool = False
    """Accept ``http://`` webhook URLs (local runs only). False: ``https://`` only."""
    webhook_allow_private_targets: bool = False
    """Accept webhook targets that resolve to loopback, link-local, private or other
    non-global addresses (local runs only: a receiver on this machine). False: such a
    URL is refused at creation (422) and such an address at each delivery (the name may
    resolve elsewhere by then), so a webhook cannot reach the control plane's own
    network (SSRF)."""
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    """Limit of one webhook request (connect, send, answer); past it the attempt failed."""
    webhook_retry_schedule_seconds: list[Annotated[float, Field(ge=0, le=86400)]] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0],
        min_length=1,
        max_length=20,
    )
    """Waits before each retry of a failed delivery: the first attempt at once, then
    after 5 s, 5 min, 30 min, 2 h, 5 h and 10 h (7 attempts over about 17.6 hours).
    After the last one fails the webhook is disabled and the organisation notified."""
    webhook_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    """How often each process's background sender (notifications/worker.py) looks for
    due e-mails and webhook deliveries when its last turn found less than a batch."""
    webhook_batch: int = Field(default=16, ge=1, le=500)
    """Deliveries one worker claims and sends concurrently per turn."""
    usage_check_seconds: float = Field(default=300.0, ge=1, le=86400)
    """How often each process's background sender compares every organisation's events
    this period with its plan's monthly events, to tell it once at 80 % and once at
    100 % (a notice, its webhooks' ``usage.threshold``, its owners by e-mail)."""

    argon2_time_cost: int = Field(default=3, ge=1)
    """argon2id passes (RFC 9106 second recommendation: t=3, m=64 MiB)."""
    argon2_memory_kib: int = Field(default=65536, ge=1024)
    """argon2id memory in KiB."""

    migrate_on_start: bool = True
    """Apply pending SQL migrations when the app starts."""
    db_pool_min: int = Field(default=1, ge=0)
    """PostgreSQL connections each process keeps open."""
    db_pool_max: int = Field(default=10, ge=1)
    """Most PostgreSQL connections of one process (one per request in flight)."""
    db_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    """Longest wait for a new PostgreSQL connection (TCP, TLS and start-up). Past it the
    request is a 503 with Retry-After (``outages.py``), not a hang."""
    db_command_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    """Longest wait for one PostgreSQL statement of a request (asyncpg's
    ``command_timeout``; the statement is cancelled). Bounds a request on a server that
    stopped answering; the control plane's own statements take milliseconds."""
    redis_timeout_seconds: float = Field(default=1.0, gt=0, le=60)
    """Longest wait for a Redis connection and for each command's answer; a failed
    command is retried once. Past it the request is a 503 with Retry-After, or, for a
    read, served under the bounded-staleness policy (``outages.py``)."""

    clickhouse_url_override: str | None = None
    """One ClickHouse URL for every tenant's panel queries (local runs: the loopback
    engine, ``http://user:pw@127.0.0.1:PORT/``, or ``chdb:///path``). Unset: the tenant's
    own Service as ``reader``, with the password from its ``clickhouse-credentials``."""
    panel_max_execution_seconds: int | None = Field(default=None, ge=1)
    """A cap on ``max_execution_time`` of panel queries; unset: the tenant's plan's
    (``tenantry.api.plans``, the reader's ``max_execution_time_s``). The reader's settings
    profile pins the setting between 1 and the plan's value, so a query never gets more
    than the plan gives, whatever this says."""
    panel_max_result_rows: int | None = Field(default=None, ge=1)
    """A cap on ``max_result_rows`` of panel queries (same rule as the execution time)."""
    panel_readonly: int = Field(default=2, ge=1, le=2)
    """``readonly`` sent with panel queries. 2 on purpose: the reader's profile is
    ``readonly = 2`` and ClickHouse refuses any change of ``readonly`` from 2 (even to
    1), so 1 only works against an engine without that profile. Both forbid writes."""

    @model_validator(mode="after")
    def _proxies_named(self) -> Settings:
        if self.trust_forwarded_for and not self.trusted_proxies:
            raise ValueError(
                "TENANTRY_CP_TRUST_FORWARDED_FOR needs TENANTRY_CP_TRUSTED_PROXIES: the "
                "proxies whose X-Forwarded-For is believed"
            )
        return self

    @model_validator(mode="after")
    def _body_limits_ordered(self) -> Settings:
        if self.max_large_body_bytes < self.max_body_bytes:
            raise ValueError("TENANTRY_CP_MAX_LARGE_BODY_BYTES must be at least MAX_BODY_BYTES")
        return self

    @model_validator(mode="after")
    def _smtp_complete(self) -> Settings:
        if not self.smtp_host:
            return self
        if not self.smtp_from or "@" not in parseaddr(self.smtp_from)[1]:
            raise ValueError("TENANTRY_CP_SMTP_FROM must be an e-mail address with SMTP_HOST")
        if not self.public_url:
            raise ValueError("TENANTRY_CP_PUBLIC_URL is required with SMTP_HOST (invitation links)")
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("set both or neither of SMTP_USERNAME and SMTP_PASSWORD")
        return self

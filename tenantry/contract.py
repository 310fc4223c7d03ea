"""Names the operator, the control plane and the ingestion service must agree on.

Each is defined here once and imported by every component that uses it; a copy in a
component is how they drifted before (the ingestion service once derived the tenant
database as `<tenant>` while the operator created `t_<tenant>`, and only a test-only
URL override hid it). This module is the shared package's bottom layer: it imports
nothing of the project.
"""

from __future__ import annotations

import re
import secrets


def tenant_namespace(tenant: str) -> str:
    """The namespace that holds a Tenant's stack: `tenant-<Tenant name>`."""
    return f"tenant-{tenant}"


def tenant_of_namespace(namespace: str) -> str | None:
    """The Tenant whose stack `namespace` holds (the inverse of `tenant_namespace`), or
    None for any other namespace."""
    name = namespace.removeprefix("tenant-")
    return name if name and name != namespace else None


def tenant_database(tenant: str) -> str:
    """The Tenant's ClickHouse database: `t_<Tenant name>` with '-' as '_'.

    Tenant names are DNS labels (lowercase letters, digits, '-'), so the result is a
    plain identifier that never starts with a digit and never collides with another
    tenant's (one engine may host several tenants in local runs)."""
    return "t_" + tenant.replace("-", "_")


def service_host(namespace: str, service: str) -> str:
    """A Service's DNS name inside the cluster: `<service>.<namespace>.svc.cluster.local`."""
    return f"{service}.{namespace}.svc.cluster.local"


# The tenant's ClickHouse entry point: the Service the operator renders in the tenant's
# namespace, which the operator (schema, dashboards) and the control plane (panel
# queries) dial over HTTP.
CLICKHOUSE_SERVICE = "clickhouse"
CLICKHOUSE_HTTP_PORT = 8123


def tenant_clickhouse_host(tenant: str) -> str:
    """The DNS name of a Tenant's ClickHouse Service."""
    return service_host(tenant_namespace(tenant), CLICKHOUSE_SERVICE)


API_KEY_PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
API_KEY_PREFIX_LENGTH = 8
API_KEY_SECRET_BYTES = 32  # 256 bits; token_urlsafe writes them as 43 characters
API_KEY_SHAPE = "tnt_<8 lowercase letters or digits>_<43 URL-safe base64 characters>"
_API_KEY = re.compile(r"tnt_[a-z0-9]{8}_[A-Za-z0-9_-]{43}")


def new_api_key() -> tuple[str, str]:
    """(key, prefix) for a fresh API key: `tnt_<prefix>_<secret>`. The prefix names the
    key in lists and logs; the secret carries API_KEY_SECRET_BYTES of randomness."""
    prefix = "".join(secrets.choice(API_KEY_PREFIX_ALPHABET) for _ in range(API_KEY_PREFIX_LENGTH))
    return f"tnt_{prefix}_{secrets.token_urlsafe(API_KEY_SECRET_BYTES)}", prefix


def is_api_key(text: str) -> bool:
    """Whether `text` has the shape `new_api_key` gives (says nothing of its validity):
    the ingestion service refuses anything else without asking the control plane."""
    return _API_KEY.fullmatch(text) is not None


# -- Labels ---------------------------------------------------------------------------
# On the Tenant and Dashboard CRs the control plane writes: the owning organisation
# (the operator checks the plan's limits and meters usage by it) and the customer's own
# name for the resource.
LABEL_ORG = "tenantry.io/org-id"
LABEL_NAME = "tenantry.io/name"
# On every object the operator builds for a tenant, and what its watches select by.
LABEL_TENANT = "tenantry.io/tenant"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"

# On a Tenant: the Restore that holds its ingestion writers and backups while it runs
# (set and removed by the operator's restore worker; docs/backup-restore.md, 2.1).
ANNOTATION_RESTORE_HOLD = "tenantry.io/restore-hold"
# `tenantry ingest` flag: accept events into Redis but run no writer (the held pods).
INGEST_NO_WRITER_FLAG = "--no-writer"

# -- Secrets the operator generates in a tenant's namespace, and their keys -------------
# Read by the operator (admin, for the schema and dashboards), the control plane
# (reader, for panel queries) and, through the pod's env, the ingestion service (writer).
CLICKHOUSE_SECRET = "clickhouse-credentials"  # noqa: S105 - a Secret's name
CLICKHOUSE_PASSWORD_KEYS = {  # ClickHouse user -> key of its password in that Secret
    "admin": "admin-password",
    "writer": "writer-password",
    "reader": "reader-password",
}
# The cluster's interserver secret (remote_servers <secret>): the hosts authenticate
# Distributed queries to one another with it, and the shards run them as the user who
# sent them. Generated once; only the ClickHouse pods read it (env, from_env).
CLICKHOUSE_INTERSERVER_SECRET = "clickhouse-interserver"  # noqa: S105 - a Secret's name
CLICKHOUSE_INTERSERVER_KEY = "secret"  # the key holding it
REDIS_SECRET = "redis-credentials"  # noqa: S105 - a Secret's name
REDIS_PASSWORD_KEY = "password"  # noqa: S105 - a key name
INGESTION_SECRET = "ingestion-credentials"  # noqa: S105 - a Secret's name
INGESTION_TOKEN_KEY = "internal-token"  # noqa: S105 - the internal API token's key
BACKUP_S3_SECRET = "backup-s3-credentials"  # noqa: S105 - a Secret's name

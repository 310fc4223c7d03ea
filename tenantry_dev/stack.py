"""``python -m tenantry_dev dev`` (``make dev``): the whole product on this machine.

Starts (or reuses) the local control plane, installs the CRDs, then runs PostgreSQL,
Redis, S3 (SeaweedFS, where the operator creates the tenants' backup buckets and the
backups go) and a ClickHouse engine (chDB behind the loopback HTTP endpoint, standing
in for the tenants' ClickHouse since kwok pods run nothing) as local processes, and on
top of them the control plane API and the operator, all on embedded defaults. Ctrl-C stops
everything but the cluster (``make cluster-down`` stops that). State lives in the
cluster's state directory, so users, organisations and tenants survive a restart.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from tenantry_dev.cluster import LocalCluster
from tenantry_dev.services import Postgres, RedisServer, SeaweedS3, free_port, stop_process

# The console's build output (`make console`, which `make dev` runs first) and its client
# id (console/src/auth.ts).
CONSOLE_DIR = Path(__file__).resolve().parents[1] / "console" / "dist"
CONSOLE_CLIENT_ID = "tenantry-console"


def console_redirects(port: int) -> list[str]:
    """add-client arguments: the console's callback on both loopback names."""
    return [
        arg
        for host in ("127.0.0.1", "localhost")
        for arg in ("--redirect-uri", f"http://{host}:{port}/callback")
    ]


def _token(path: Path) -> str:
    """A stable secret for this dev state (the internal token of control plane <->
    ingestion and billing; the S3 server's secret key)."""
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def run(
    cluster: LocalCluster,
    *,
    api_port: int = 8000,
    operator_port: int = 8080,
    internal_port: int = 8001,
) -> int:
    cluster.up()
    state = cluster.state_dir
    cluster.install_crds()
    kenv = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    pg = Postgres.start(state / "postgres")
    redis = RedisServer.start(state / "redis")
    try:
        s3 = SeaweedS3.start(
            state / "s3",
            access_key_id="tenantry-dev",
            secret_access_key=_token(state / "s3-secret"),
        )
    except BaseException:
        redis.stop()
        pg.stop()
        raise
    ch_port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tenantry_dev.loopback_server",
                    "--path",
                    str(state / "chdb"),
                    "--port",
                    str(ch_port),
                    "--user",
                    "dev",
                    "--password",
                    "dev",
                ]
            )
        )
        clickhouse = f"http://dev:dev@127.0.0.1:{ch_port}/"
        token = _token(state / "internal-token")
        env = {
            **kenv,
            "TENANTRY_CP_DATABASE_URL": pg.url("postgres"),
            "TENANTRY_CP_REDIS_URL": redis.url,
            "TENANTRY_CP_KUBECONFIG": str(cluster.kubeconfig),
            "TENANTRY_CP_ISSUER": f"http://127.0.0.1:{api_port}",
            "TENANTRY_CP_INTERNAL_TOKEN": token,
            "TENANTRY_CP_CLICKHOUSE_URL_OVERRIDE": clickhouse,
            "TENANTRY_CLICKHOUSE_URL_OVERRIDE": clickhouse,
            "TENANTRY_INTERNAL_TOKEN": token,
            # The internal listener (/internal/...): the public port does not serve it.
            "TENANTRY_CONTROLPLANE_URL": f"http://127.0.0.1:{internal_port}",
            "TENANTRY_S3_ENDPOINT": s3.endpoint,
            "TENANTRY_S3_ACCESS_KEY_ID": s3.access_key_id,
            "TENANTRY_S3_SECRET_ACCESS_KEY": s3.secret_access_key,
            "TENANTRY_CP_CONSOLE_DIR": str(CONSOLE_DIR),
        }
        tenantry = [sys.executable, "-m", "tenantry_cli"]
        subprocess.run([*tenantry, "controlplane", "migrate"], env=env, check=True)
        # The web console is a public OAuth client; its redirect URI is its own page.
        subprocess.run(
            [
                *tenantry,
                "controlplane",
                "add-client",
                CONSOLE_CLIENT_ID,
                "--name",
                "Tenantry console",
                *console_redirects(api_port),
            ],
            env=env,
            check=True,
        )
        procs.append(
            subprocess.Popen(
                [
                    *tenantry,
                    "controlplane",
                    "serve",
                    "--port",
                    str(api_port),
                    "--internal-port",
                    str(internal_port),
                ],
                env=env,
            )
        )
        op_env = {**env, "KUBECONFIG": str(cluster.operator_kubeconfig)}
        procs.append(
            subprocess.Popen(
                [*tenantry, "operator", "--liveness", f"http://127.0.0.1:{operator_port}/healthz"],
                env=op_env,
            )
        )
        print(
            f"""
Tenantry is running locally:
  web console         http://127.0.0.1:{api_port}/  (sign up there)
  control plane API   http://127.0.0.1:{api_port}  (OpenAPI: /docs)
  its internal API    http://127.0.0.1:{internal_port}/internal/...  (operator, ingestion)
  its metrics         http://127.0.0.1:9464/metrics  (internal listener)
  operator liveness   http://127.0.0.1:{operator_port}/healthz
  kubectl             export KUBECONFIG={cluster.kubeconfig}
  PostgreSQL          {pg.url("postgres")}
  Redis               {redis.url}
  ClickHouse (chDB)   http://127.0.0.1:{ch_port}  (user dev)
  S3 (SeaweedFS)      {s3.endpoint}  (key {s3.access_key_id}, secret in {state / "s3-secret"})
Try: kubectl apply -f examples/   |   Ctrl-C stops all but the cluster.
""",
            flush=True,
        )
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        failed = [p.args for p in procs if p.poll() not in (None, 0)]
        print(f"a component exited: {failed}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C or a SIGTERM must not cut the clean-up short: that left the
        # S3 server and PostgreSQL running after the stack was gone.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            stop_process(p, grace=20)  # waits, then SIGKILL and reaps
        s3.stop()
        redis.stop()
        pg.stop()

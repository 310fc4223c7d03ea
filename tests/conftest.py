"""Session fixtures that start real components.

The Kubernetes fixture starts the local control plane (etcd, kube-apiserver,
controller-manager, scheduler, kwok) in a temporary directory on free ports, unless
TENANTRY_E2E_KUBECONFIG points at an existing cluster (a kind cluster in users' CI):
then the same tests run against that.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.kube import Kube
from tests.support.operator import OperatorProcess
from tests.support.seaweed import S3Server, seaweed
from tests.support.wait import SCALE, eventually, scaled

if TYPE_CHECKING:
    from tenantry.clickhouse.chdb_client import ChdbClient
    from tenantry_dev.loopback_server import LoopbackServer
    from tests.support.realcluster import RealCluster

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    from tenantry_dev import tools

    kubectl = tools.ensure(("kubectl",))["kubectl"]
    external = os.environ.get("TENANTRY_E2E_KUBECONFIG")
    if external:
        yield Kube(kubeconfig=Path(external), kubectl=kubectl)
        return
    from tenantry_dev.cluster import LocalCluster, Ports

    # up() stops what it started if it fails; destroy() stops every process by its PID.
    # The six ports are free when picked but bound only as each component starts, so a
    # suite starting its own cluster on this machine at that moment can take one: a
    # component that exited (RuntimeError) is retried on fresh ports, a timeout is not.
    for attempt in range(1, 4):
        cluster = LocalCluster(tmp_path_factory.mktemp("cluster"), ports=Ports.free(), tied=True)
        try:
            took = cluster.up(timeout=scaled(180))
            break
        except RuntimeError as err:
            if attempt == 3:
                raise
            print(f"\nlocal control plane did not start ({err}); trying other ports")
    print(f"\nlocal control plane started in {took:.1f} s")
    try:
        yield Kube(kubeconfig=cluster.kubeconfig, kubectl=kubectl)
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCluster]:
    """The local cluster with a real node, shared by tests/realnode and tests/incluster
    (tests/support/realcluster.py)."""
    from tests.support.realcluster import real_cluster

    with real_cluster(tmp_path_factory.mktemp("realnode")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def crds(kube: Kube) -> Kube:
    """The Tenantry CRDs installed and Established."""
    # Retried: right after start-up the API server may still refuse a moment.
    eventually(
        lambda: kube.try_run(
            "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds")
        ),
        accept=lambda res: res.code == 0,
        timeout=120,
        what="CRDs applied",
    )
    # `kubectl wait` fails outright (instead of waiting) while the new CRD has no
    # status.conditions yet: compiling the CEL rules of a large CRD takes a moment.
    from tenantry.api import GROUP, crdgen

    for name in (f"{defn.plural}.{GROUP}" for defn in crdgen.ALL):

        def established(name: str = name) -> bool:
            wait = ("wait", "--for=condition=Established", "--timeout=10s", f"crd/{name}")
            return kube.try_run(*wait).code == 0

        eventually(established, timeout=120, what=f"{name} Established")

    # The API server publishes the OpenAPI of a new CRD a moment after Established.
    def explained() -> list[str]:
        kinds = [defn.kind.lower() for defn in crdgen.ALL]
        return [k for k in kinds if kube.try_run("explain", k).code != 0]

    eventually(
        explained, accept=lambda missing: not missing, timeout=120, what="OpenAPI of the CRDs"
    )
    return kube


def pytest_report_header() -> list[str]:
    try:
        go = subprocess.run(
            ["go", "version"], capture_output=True, text=True, check=False, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        go = "go: not found"
    return [f"tenantry: {go}", f"tenantry: TENANTRY_TEST_TIMEOUT_SCALE={SCALE:g}"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """pytest-timeout's per-test limit scales with every wait (tests/support/wait.py)."""
    limit = getattr(config, "_env_timeout", None)  # pytest-timeout's ini/CLI value
    if SCALE == 1 or not limit:
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(float(limit) * SCALE))


# Module scope: the operator runs only for the modules that ask for it, so the
# control-plane tests that play the operator's part themselves never race a real one.
@pytest.fixture(scope="module")
def operator_process(
    crds: Kube,
    s3_server: S3Server,
    loopback: LoopbackServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """`tenantry operator` running against the cluster, with backups on the test S3 and
    every tenant's ClickHouse reached at the loopback engine (kwok pods run nothing)."""
    env = {
        **crds.env(),
        "TENANTRY_CLICKHOUSE_URL_OVERRIDE": (
            f"http://writer:{LOOPBACK_WRITER_PASSWORD}@127.0.0.1:{loopback.port}/"
        ),
        "TENANTRY_S3_ENDPOINT": s3_server.endpoint,
        "TENANTRY_S3_ACCESS_KEY_ID": s3_server.access_key_id,
        "TENANTRY_S3_SECRET_ACCESS_KEY": s3_server.secret_access_key,
        "TENANTRY_RESYNC_SECONDS": "60",
    }
    proc = OperatorProcess(env=env, log=tmp_path_factory.mktemp("operator") / "operator.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
        if os.environ.get("TENANTRY_SHOW_OPERATOR_LOG"):
            print(proc.log.read_text())


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 server (SeaweedFS) on loopback for the whole session."""
    with seaweed(tmp_path_factory.mktemp("s3")) as server:
        yield server


# The ClickHouse engine (chDB) for the whole pytest process. chDB allows one engine
# per process and one process per data directory, so every suite that needs the
# engine (clickhouse, ingestion, ...) shares this ONE session-scoped directory, each
# test in its own database. The loopback ClickHouse-HTTP endpoint runs in this process
# over the same directory (connections on one path share the engine), so the HTTP
# adapter, and subprocesses that cannot open the directory themselves, see the same
# data. chDB is imported inside the fixtures: it is large, and most suites never
# need it.

LOOPBACK_WRITER_PASSWORD = "loopback-test-password"


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def chdb_client(chdb_path: Path) -> Iterator[ChdbClient]:
    from tenantry.clickhouse.chdb_client import ChdbClient

    client = ChdbClient(chdb_path)
    yield client
    client.close()


@pytest.fixture(scope="session")
def loopback(chdb_path: Path, chdb_client: ChdbClient) -> Iterator[LoopbackServer]:
    """A ClickHouse-HTTP endpoint on loopback over the session's chDB directory."""
    from tenantry_dev.loopback_server import LoopbackServer

    server = LoopbackServer(
        chdb_path, port=0, users={"default": "", "writer": LOOPBACK_WRITER_PASSWORD}
    ).start()
    yield server
    server.close()

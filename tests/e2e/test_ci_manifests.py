"""The manifests CI applies to other clusters are valid Kubernetes objects, checked by the
API server itself (server-side dry run): the kind workflow's PostgreSQL and Redis
(tests/e2e/kind-services.yaml) and the in-cluster suite's (tenantry_dev/platform.py).
Neither can run here before a cluster with real nodes exists; a misplaced field or a
wrong apiVersion must fail here, not in users' CI."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from tenantry_dev import platform
from tests.support.kube import Kube

KIND_SERVICES = Path(__file__).with_name("kind-services.yaml")


def _dry_run(kube: Kube, objects: list[dict[str, Any]]) -> None:
    # Into a namespace of this test's own (a deleted one lingers while it terminates).
    own = f"ci-manifests-{secrets.token_hex(3)}"
    for obj in objects:
        if obj["kind"] == "Namespace":
            obj["metadata"]["name"] = own
        elif "namespace" in obj["metadata"]:
            obj["metadata"]["namespace"] = own
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    assert len(namespaces) == 1
    rest = [o for o in objects if o["kind"] != "Namespace"]
    # The namespaces for real (a dry-run object cannot be created inside a dry-run one).
    kube.run("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(namespaces))
    try:
        res = kube.try_run(
            "apply",
            "--server-side",
            "--dry-run=server",
            "--validate=strict",
            "-f",
            "-",
            stdin=yaml.safe_dump_all(rest),
        )
        assert res.code == 0, res.stderr
        assert res.stdout.count("(server dry run)") == len(rest), res.stdout
    finally:
        for ns in namespaces:
            kube.try_run("delete", "namespace", ns["metadata"]["name"], "--wait=false")


@pytest.mark.cluster
def test_the_kind_workflow_services_are_valid_objects(crds: Kube) -> None:
    _dry_run(crds, list(yaml.safe_load_all(KIND_SERVICES.read_text())))


@pytest.mark.cluster
@pytest.mark.parametrize(
    "images",
    [
        platform.Images.official(),
        platform.Images(
            tenantry="tenantry:dev",
            postgres="local/postgresql:15",
            redis="local/redis:7",
            s3="local/seaweedfs:4.48",
            tenant_clickhouse="local/clickhouse-standin",
            tenant_keeper="local/keeper-standin",
            tenant_redis="local/redis",
        ),
    ],
    ids=["official", "local"],
)
def test_the_incluster_dependencies_are_valid_objects(crds: Kube, images: platform.Images) -> None:
    _dry_run(crds, platform.dependencies(images, "a-password"))

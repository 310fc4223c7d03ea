"""Render the chart with the pinned helm, as `helm template` would for an admin.

The helm built from its Go module here has no Kubernetes version stamped in (it would
assume 1.20), so every call names the version the output is validated against.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.wait import scaled

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "tenantry"
KUBE_VERSION = "1.33.0"
RELEASE = "t"
NAMESPACE = "tenantry-system"

# The control plane needs its connection URLs; everything else has a default.
REQUIRED: dict[str, Any] = {
    "controlplane": {
        "database": {"url": "postgresql://tenantry@db:5432/tenantry"},
        "redis": {"url": "redis://redis:6379/0"},
    }
}

Obj = dict[str, Any]


@functools.cache
def helm() -> Path:
    from tenantry_dev import tools

    return tools.ensure(("helm",))["helm"]


def merge(base: Obj, override: Obj) -> Obj:
    """Deep merge of values, as helm merges -f files."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def run(values: Obj | None = None, *, required: bool = True) -> subprocess.CompletedProcess[str]:
    merged = merge(REQUIRED if required else {}, values or {})
    return subprocess.run(
        [
            str(helm()),
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBE_VERSION,
            "--values",
            "-",
        ],
        input=yaml.safe_dump(merged),
        capture_output=True,
        text=True,
        timeout=scaled(120),
        check=False,
    )


def render(values: Obj | None = None, *, required: bool = True) -> list[Obj]:
    """The objects `helm template` prints for these values (merged over REQUIRED)."""
    proc = run(values, required=required)
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def error(values: Obj | None = None, *, required: bool = True) -> str:
    """The error of a render that must fail."""
    proc = run(values, required=required)
    assert proc.returncode != 0, f"rendered although it should fail:\n{proc.stdout[:2000]}"
    return proc.stderr


def find(objs: list[Obj], kind: str, name: str | None = None) -> list[Obj]:
    return [
        o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objs: list[Obj], kind: str, name: str) -> Obj:
    found = find(objs, kind, name)
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def kinds(objs: list[Obj]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in objs}

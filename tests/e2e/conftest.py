"""Fixtures shared by the e2e tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.kube import Kube, resource
from tests.support.operator import OperatorProcess


def _maker(crds: Kube, kind: str) -> Iterator[Any]:
    """make(base, spec): a new object of ``kind`` with a fresh name; all deleted after."""
    names: list[str] = []

    def make(base: str, spec: dict[str, Any]) -> str:
        # A fresh name per run: a cluster may keep a retained namespace of an earlier one.
        name = f"{base}-{secrets.token_hex(2)}"
        crds.apply(resource(kind, name, spec))
        names.append(name)
        return name

    yield make
    for name in names:
        crds.try_run("delete", kind.lower(), name, "--wait=false")


@pytest.fixture
def make_tenant(crds: Kube, operator_process: OperatorProcess) -> Iterator[Any]:
    yield from _maker(crds, "Tenant")


@pytest.fixture
def make_restore(crds: Kube, operator_process: OperatorProcess) -> Iterator[Any]:
    yield from _maker(crds, "Restore")

"""Fixtures shared by the e2e tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.kube import Kube, tenant
from tests.support.operator import OperatorProcess


@pytest.fixture
def make_tenant(crds: Kube, operator_process: OperatorProcess) -> Iterator[Any]:
    names: list[str] = []

    def make(base: str, spec: dict[str, Any]) -> str:
        # A fresh name per run: a cluster may keep a retained namespace of an earlier one.
        name = f"{base}-{secrets.token_hex(2)}"
        crds.apply(tenant(name, spec))
        names.append(name)
        return name

    yield make
    for name in names:
        crds.try_run("delete", "tenant", name, "--wait=false")

"""Holding a tenant's writers while a Restore runs (restore_hold), and what the builders
render for a held tenant."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from tenantry_operator import builders, restore_hold

from tenantry import contract
from tests.unit.operator import fixtures


def _pod(*args: str, terminating: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "ingestion-x"}
    if terminating:
        meta["deletionTimestamp"] = "2026-12-06T10:00:00Z"
    return {"metadata": meta, "spec": {"containers": [{"name": "ingestion", "args": list(args)}]}}


def test_writers_are_held_only_when_no_pod_runs_one() -> None:
    held = _pod("ingest", "--no-writer")
    assert restore_hold.writers_held([])
    assert restore_hold.writers_held([held, held])
    # An old pod in its grace period may still be finishing an insert.
    assert not restore_hold.writers_held([held, _pod("ingest", terminating=True)])
    assert not restore_hold.writers_held([_pod("ingest")])


@pytest.mark.parametrize(
    ("restore", "active"),
    [
        (None, False),
        ({"spec": {"tenant": "globex"}}, True),
        ({"spec": {"tenant": "globex"}, "status": {"phase": "Pending"}}, True),
        ({"spec": {"tenant": "globex"}, "status": {"phase": "Running"}}, True),
        ({"spec": {"tenant": "globex"}, "status": {"phase": "Succeeded"}}, False),
        ({"spec": {"tenant": "globex"}, "status": {"phase": "Failed"}}, False),
        ({"spec": {"tenant": "other"}, "status": {"phase": "Running"}}, False),
    ],
)
def test_a_hold_lasts_while_its_restore_runs(restore: dict[str, Any] | None, active: bool) -> None:
    assert restore_hold.active(restore, tenant="globex") is active


def test_the_annotation_names_the_restore_and_is_removed_with_null() -> None:
    key = contract.ANNOTATION_RESTORE_HOLD
    assert restore_hold.annotation_patch("r1") == {"metadata": {"annotations": {key: "r1"}}}
    assert restore_hold.annotation_patch(None) == {"metadata": {"annotations": {key: None}}}
    tenant = {"metadata": {"annotations": {key: "r1"}}}
    assert restore_hold.holder(tenant) == "r1"
    assert restore_hold.holder({"metadata": {}}) is None


def test_the_restoring_condition() -> None:
    on = restore_hold.condition("r1", before=[])
    assert on is not None
    assert (on.type, on.status, on.reason) == ("Restoring", "True", "RestoreRunning")
    assert "r1" in on.message
    off = restore_hold.condition(None, before=[{"type": "Restoring", "status": "True"}])
    assert off is not None
    assert (off.status, off.reason) == ("False", "NoRestore")
    assert restore_hold.condition(None, before=[{"type": "Ready"}]) is None


def _built(model: Any, kind: str, name: str) -> dict[str, Any]:
    return next(
        o for o in builders.build(model) if o["kind"] == kind and o["metadata"]["name"] == name
    )


def test_a_held_tenant_runs_ingestion_without_a_writer_and_no_backups() -> None:
    model = fixtures.model("tenant-sharded")
    assert model.backup is not None
    free = _built(model, "Deployment", "ingestion")
    assert free["spec"]["template"]["spec"]["containers"][0]["args"] == ["ingest"]
    assert _built(model, "CronJob", "backup")["spec"]["suspend"] is False
    held_model = dataclasses.replace(model, restore_hold="r1")
    held = _built(held_model, "Deployment", "ingestion")
    args = held["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["ingest", contract.INGEST_NO_WRITER_FLAG]
    assert restore_hold.writers_held([held["spec"]["template"]])
    assert not restore_hold.writers_held([free["spec"]["template"]])
    assert _built(held_model, "CronJob", "backup")["spec"]["suspend"] is True
    # The rest of the stack is the same: nothing else restarts.
    others = [o for o in builders.build(model) if o["kind"] not in ("Deployment", "CronJob")]
    assert others == [
        o for o in builders.build(held_model) if o["kind"] not in ("Deployment", "CronJob")
    ]


def test_the_hold_flag_is_the_one_ingestion_parses() -> None:
    import argparse

    from ingestion import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert parser.parse_args([contract.INGEST_NO_WRITER_FLAG]).no_writer is True
    assert parser.parse_args([]).no_writer is False

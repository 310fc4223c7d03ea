"""The local provisioner's pure rules: which claims get a volume, and the PV it makes."""

from __future__ import annotations

from typing import Any

from tenantry_dev import provisioner as p


def claim(
    *, phase: str = "Pending", node: str | None = None, cls: str | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "data-ch-s0-r0-0", "namespace": "tenant-a", "uid": "u-1"}
    if node is not None:
        meta["annotations"] = {p.SELECTED_NODE: node}
    spec: dict[str, Any] = {"resources": {"requests": {"storage": "2Gi"}}}
    if cls is not None:
        spec["storageClassName"] = cls
    return {"metadata": meta, "spec": spec, "status": {"phase": phase}}


def test_the_class_binds_on_first_consumer() -> None:
    assert p.storage_class()["volumeBindingMode"] == "WaitForFirstConsumer"


def test_a_claim_gets_a_volume_once_the_scheduler_placed_it() -> None:
    assert not p.wants_volume(claim(), immediate=False)
    assert p.wants_volume(claim(node="kwok-node-1"), immediate=False)


def test_an_immediate_class_from_an_older_run_still_gets_volumes() -> None:
    assert p.wants_volume(claim(), immediate=True)


def test_bound_claims_and_other_classes_are_left_alone() -> None:
    assert not p.wants_volume(claim(phase="Bound", node="n"), immediate=True)
    assert not p.wants_volume(claim(node="n", cls="other"), immediate=True)


def test_the_volume_is_pinned_to_the_chosen_node_and_bound_to_the_claim() -> None:
    pv = p.pv_for(claim(node="kwok-node-1"), "Delete")
    term = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert term == {"key": "kubernetes.io/hostname", "operator": "In", "values": ["kwok-node-1"]}
    assert pv["spec"]["claimRef"]["uid"] == "u-1"
    assert pv["spec"]["capacity"]["storage"] == "2Gi"
    assert "nodeAffinity" not in p.pv_for(claim(), "Delete")["spec"]

"""The local provisioner's pure rules: which claims get a volume, and the PV it makes."""

from __future__ import annotations

from pathlib import Path
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


def test_claims_of_any_class_it_serves_get_a_volume() -> None:
    served = frozenset({"standard", "keep"})
    assert p.wants_volume(claim(node="n", cls="keep"), immediate=False, classes=served)
    assert not p.wants_volume(claim(node="n", cls="other"), immediate=False, classes=served)


def test_a_real_volume_is_a_directory_under_the_volumes_folder(tmp_path: Path) -> None:
    pv = p.pv_for(claim(node="tenantry-node"), "Retain", tmp_path)
    assert pv["spec"]["hostPath"]["path"] == str(tmp_path / "pvc-u-1")
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert p.pv_for(claim(), "Delete")["spec"]["hostPath"]["path"] == "/var/lib/tenantry-fake/u-1"


def test_a_volume_grows_only_when_its_claim_asks_for_more() -> None:
    pv = {"spec": {"capacity": {"storage": "1Gi"}}}
    bigger = claim()
    bigger["spec"]["resources"]["requests"]["storage"] = "1536Mi"
    assert p.wanted_size(bigger, pv) == "1536Mi"
    same = claim()
    same["spec"]["resources"]["requests"]["storage"] = "1024Mi"
    assert p.wanted_size(same, pv) is None
    smaller = claim()
    smaller["spec"]["resources"]["requests"]["storage"] = "500Mi"
    assert p.wanted_size(smaller, pv) is None

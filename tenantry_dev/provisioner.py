"""A volume provisioner for the local cluster, standing in for a CSI driver.

kwok simulates kubelets, but nothing provisions PersistentVolumes, so a StatefulSet
with volumeClaimTemplates would wait forever. This process does what a dynamic
provisioner does, through the real API: for each Pending PVC of the ``standard``
StorageClass that the scheduler has placed (the ``selected-node`` annotation) it creates
a PV pre-bound to the claim and pinned to that node (the real PV controller then binds
them), and it deletes Released PVs whose reclaim policy is Delete. No data is stored:
the volumes are as fake as the kwok pods that mount them.

The class binds on first consumer, as kind's local-path class does. With ``Immediate``
binding the scheduler refuses a pod whose claim is not bound yet and relies on a
later PVC event to retry it; on a loaded machine that retry was seen lost, leaving a
pod Pending for minutes on a claim that was long bound. With ``WaitForFirstConsumer``
the scheduler itself asks for the volume and waits for the binding in the same
scheduling attempt.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tenantry_dev.cluster import LocalCluster, Ports

STORAGE_CLASS = "standard"
PROVISIONER = "tenantry.io/local-fake"
SELECTED_NODE = "volume.kubernetes.io/selected-node"


def storage_class() -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    }


def pv_for(pvc: dict[str, Any], reclaim: str) -> dict[str, Any]:
    meta = pvc["metadata"]
    node = (meta.get("annotations") or {}).get(SELECTED_NODE)
    pv: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"pvc-{meta['uid']}",
            "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER},
        },
        "spec": {
            "capacity": {"storage": pvc["spec"]["resources"]["requests"]["storage"]},
            "accessModes": pvc["spec"].get("accessModes", ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": reclaim,
            "storageClassName": pvc["spec"].get("storageClassName", STORAGE_CLASS),
            "hostPath": {"path": f"/var/lib/tenantry-fake/{meta['uid']}"},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
        },
    }
    if node:
        # The volume lives on the node the scheduler chose, and pods that mount it
        # later must go back there: what a node-local volume means.
        term = {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
        pv["spec"]["nodeAffinity"] = {
            "required": {"nodeSelectorTerms": [{"matchExpressions": [term]}]}
        }
    return pv


def wants_volume(pvc: dict[str, Any], immediate: bool) -> bool:
    """Whether a claim of this class is due a volume now: Pending, and either placed by
    the scheduler or of a class (made by an older run) that binds immediately."""
    if pvc.get("status", {}).get("phase") != "Pending":
        return False
    if pvc["spec"].get("storageClassName", STORAGE_CLASS) != STORAGE_CLASS:
        return False
    return immediate or SELECTED_NODE in (pvc["metadata"].get("annotations") or {})


def step(cluster: LocalCluster) -> int:
    """One pass; returns the number of changes made."""
    changes = 0
    status, body = cluster.get("/api/v1/persistentvolumeclaims")
    if status != 200:
        return 0
    status, pvs_body = cluster.get("/api/v1/persistentvolumes")
    pvs = json.loads(pvs_body)["items"] if status == 200 else []
    existing = {pv["metadata"]["name"] for pv in pvs}
    status, sc_body = cluster.get(f"/apis/storage.k8s.io/v1/storageclasses/{STORAGE_CLASS}")
    immediate = status == 200 and json.loads(sc_body).get("volumeBindingMode") == "Immediate"
    for pvc in json.loads(body)["items"]:
        if not wants_volume(pvc, immediate):
            continue
        pv = pv_for(pvc, "Delete")
        if pv["metadata"]["name"] in existing:
            continue
        code, _ = cluster.request("POST", "/api/v1/persistentvolumes", pv)
        changes += code == 201
    for pv in pvs:
        released = pv.get("status", {}).get("phase") == "Released"
        if released and pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete":
            code, _ = cluster.request(
                "DELETE", f"/api/v1/persistentvolumes/{pv['metadata']['name']}", {}
            )
            changes += code == 200
    return changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("state_dir")
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args(argv)
    state = Path(args.state_dir)
    ports = Ports(**json.loads((state / "ports.json").read_text()))
    cluster = LocalCluster(state, ports=ports)
    cluster.request("POST", "/apis/storage.k8s.io/v1/storageclasses", storage_class())
    while True:
        try:
            step(cluster)
        except (OSError, ValueError) as err:
            print(f"provisioner: {err}", file=sys.stderr, flush=True)
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())

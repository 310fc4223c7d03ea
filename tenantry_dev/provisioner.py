"""A volume provisioner for the local cluster, in the role of a CSI driver.

Nothing else provisions PersistentVolumes here, so a StatefulSet with
volumeClaimTemplates would wait forever. This process does what a dynamic provisioner
(and an external resizer) does, through the real API: for each Pending PVC of a class
it serves (``provisioner: tenantry.io/local-fake``; ``standard`` is the default one)
that the scheduler has placed (the ``selected-node`` annotation) it creates a PV
pre-bound to the claim and pinned to that node (the real PV controller then binds
them); it grows a bound PV (and the claim's status) when its claim asks for more; and
it deletes Released PVs whose reclaim policy is Delete.

Two modes:
- kwok nodes (the default): no data is stored; the volumes are as fake as the kwok pods
  that mount them (hostPath under ``/var/lib/tenantry-fake``, never created).
- real nodes (``--volumes-dir DIR``, ``cluster up --nodes real``): each volume is a real
  directory ``DIR/pvc-<uid>`` (mode 0777, as local-path provisioners make them) that the
  kubelet bind-mounts into the pod; Delete removes the directory, Retain keeps it. A
  hostPath directory has no quota: a resize changes the recorded capacity only.

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
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from lightkube.utils.quantity import parse_quantity

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


def volume_path(pvc: dict[str, Any], volumes_dir: Path | None) -> str:
    """Where the claim's volume lives: a real directory under ``volumes_dir`` (real
    nodes), or a path nothing ever creates (kwok nodes)."""
    uid = pvc["metadata"]["uid"]
    if volumes_dir is None:
        return f"/var/lib/tenantry-fake/{uid}"
    return str(volumes_dir / f"pvc-{uid}")


def pv_for(pvc: dict[str, Any], reclaim: str, volumes_dir: Path | None = None) -> dict[str, Any]:
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
            "hostPath": {"path": volume_path(pvc, volumes_dir)},
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


def wants_volume(
    pvc: dict[str, Any], immediate: bool, classes: frozenset[str] = frozenset({STORAGE_CLASS})
) -> bool:
    """Whether a claim of one of ``classes`` (those this provisioner serves) is due a
    volume now: Pending, and either placed by the scheduler or of a class (made by an
    older run) that binds immediately."""
    if pvc.get("status", {}).get("phase") != "Pending":
        return False
    if pvc["spec"].get("storageClassName", STORAGE_CLASS) not in classes:
        return False
    return immediate or SELECTED_NODE in (pvc["metadata"].get("annotations") or {})


def wanted_size(pvc: dict[str, Any], pv: dict[str, Any]) -> str | None:
    """The size a bound claim asks for when it is more than its volume has (a PVC
    expansion), else None: volumes only grow."""
    want = pvc["spec"]["resources"]["requests"]["storage"]
    have = pv["spec"].get("capacity", {}).get("storage", "0")
    wanted, had = parse_quantity(want), parse_quantity(have)
    return str(want) if wanted is not None and had is not None and wanted > had else None


def _served_classes(cluster: LocalCluster) -> dict[str, dict[str, Any]]:
    status, body = cluster.get("/apis/storage.k8s.io/v1/storageclasses")
    if status != 200:
        return {}
    return {
        sc["metadata"]["name"]: sc
        for sc in json.loads(body)["items"]
        if sc.get("provisioner") == PROVISIONER
    }


def _resize(cluster: LocalCluster, pvc: dict[str, Any], pv: dict[str, Any], size: str) -> int:
    """Grow the PV to ``size``, then report it in the claim's status (what an external
    resizer does once the volume has grown)."""
    name, meta = pv["metadata"]["name"], pvc["metadata"]
    code, _ = cluster.request(
        "PATCH",
        f"/api/v1/persistentvolumes/{name}",
        {"spec": {"capacity": {"storage": size}}},
        content_type="application/merge-patch+json",
    )
    if code != 200:
        return 0
    code, _ = cluster.request(
        "PATCH",
        f"/api/v1/namespaces/{meta['namespace']}/persistentvolumeclaims/{meta['name']}/status",
        {"status": {"capacity": {"storage": size}, "conditions": None}},
        content_type="application/merge-patch+json",
    )
    return int(code == 200)


def _remove_volume(pv: dict[str, Any], volumes_dir: Path | None) -> None:
    """Delete a real volume's directory (only ever one under ``volumes_dir``)."""
    if volumes_dir is None:
        return
    path = Path(pv["spec"].get("hostPath", {}).get("path", ""))
    if path.parent == volumes_dir and path.name.startswith("pvc-"):
        shutil.rmtree(path, ignore_errors=True)


def step(cluster: LocalCluster, volumes_dir: Path | None = None) -> int:
    """One pass; returns the number of changes made."""
    changes = 0
    status, body = cluster.get("/api/v1/persistentvolumeclaims")
    if status != 200:
        return 0
    status, pvs_body = cluster.get("/api/v1/persistentvolumes")
    pvs = json.loads(pvs_body)["items"] if status == 200 else []
    by_name = {pv["metadata"]["name"]: pv for pv in pvs}
    classes = _served_classes(cluster)
    served = frozenset(classes)
    for pvc in json.loads(body)["items"]:
        cls = classes.get(pvc["spec"].get("storageClassName", STORAGE_CLASS), {})
        immediate = cls.get("volumeBindingMode") == "Immediate"
        if wants_volume(pvc, immediate, served):
            pv = pv_for(pvc, cls.get("reclaimPolicy", "Delete"), volumes_dir)
            if pv["metadata"]["name"] in by_name:
                continue
            if volumes_dir is not None:
                path = Path(volume_path(pvc, volumes_dir))
                path.mkdir(parents=True, exist_ok=True)
                path.chmod(0o777)  # any pod user may write, as with local-path volumes
            code, _ = cluster.request("POST", "/api/v1/persistentvolumes", pv)
            changes += code == 201
        elif pvc.get("status", {}).get("phase") == "Bound" and cls.get("allowVolumeExpansion"):
            bound = by_name.get(pvc["spec"].get("volumeName", ""))
            size = wanted_size(pvc, bound) if bound else None
            if bound and size:
                changes += _resize(cluster, pvc, bound, size)
    for pv in pvs:
        released = pv.get("status", {}).get("phase") == "Released"
        if released and pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete":
            _remove_volume(pv, volumes_dir)
            code, _ = cluster.request(
                "DELETE", f"/api/v1/persistentvolumes/{pv['metadata']['name']}", {}
            )
            changes += code == 200
    return changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("state_dir")
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--volumes-dir", type=Path, help="real volumes: their folder")
    args = parser.parse_args(argv)
    volumes_dir = args.volumes_dir.resolve() if args.volumes_dir else None
    state = Path(args.state_dir)
    ports = Ports(**json.loads((state / "ports.json").read_text()))
    cluster = LocalCluster(state, ports=ports)
    cluster.request("POST", "/apis/storage.k8s.io/v1/storageclasses", storage_class())
    while True:
        try:
            step(cluster, volumes_dir)
        except (OSError, ValueError) as err:
            print(f"provisioner: {err}", file=sys.stderr, flush=True)
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())

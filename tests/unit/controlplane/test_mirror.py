"""The mirror's ordering rules: fresher data always wins, whichever path it came by."""

from __future__ import annotations

from typing import Any

from controlplane.kube import CustomObject, _object
from controlplane.mirror import Mirror, newer
from tenantry import listwatch


def _obj(name: str, rv: str, **labels: str) -> CustomObject:
    return CustomObject(name=name, labels=labels, spec={"rv": rv}, resource_version=rv)


def _mirror() -> Mirror[CustomObject]:
    client: Any = None  # the pure methods never touch the API
    return Mirror(client, listwatch.Kind("tenantry.io/v1alpha1", "Tenant", "tenants"), _object)


def test_newer_compares_revisions_numerically() -> None:
    assert newer("10", "9")
    assert newer("10", "10")
    assert not newer("9", "10")
    assert newer("opaque", "10")


def test_a_late_event_never_overwrites_a_fresher_write() -> None:
    mirror = _mirror()
    mirror.put(_obj("a", "100"))
    mirror.put(_obj("a", "99"))
    assert mirror.get("a") == _obj("a", "100")
    mirror.put(_obj("a", "101"))
    assert mirror.get("a") == _obj("a", "101")


def test_deletions_are_ordered_too() -> None:
    mirror = _mirror()
    mirror.put(_obj("a", "100"))
    mirror.remove("a", "99")  # a stale deletion event
    assert mirror.get("a") is not None
    mirror.remove("a", "105")
    assert mirror.get("a") is None
    mirror.put(_obj("a", "104"))  # an event from before the deletion
    assert mirror.get("a") is None
    mirror.put(_obj("a", "110"))  # created again afterwards
    assert mirror.get("a") == _obj("a", "110")


def test_select_filters_by_labels() -> None:
    mirror = _mirror()
    mirror.put(_obj("a", "1", org="x"))
    mirror.put(_obj("b", "2", org="y"))
    assert [o.name for o in mirror.select({"org": "x"})] == ["a"]
    assert not mirror.synced

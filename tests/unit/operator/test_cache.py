"""The watch-fed child cache (cache.py): what reconciles read instead of listing."""

from __future__ import annotations

from typing import Any

from tenantry_operator import builders, normalize
from tenantry_operator.cache import ChildCache, LiveState, dictionary_from

from tenantry import contract

NS = "tenant-acme"


def _obj(kind: str, name: str, **extra: Any) -> dict[str, Any]:
    meta = {"name": name, "labels": {contract.LABEL_TENANT: "acme"}, **extra}
    if kind != "Namespace":
        meta["namespace"] = NS
    return {"metadata": meta, "spec": {"replicas": 1, "nested": {"a": [1, 2.5, None, True]}}}


def test_children_come_back_as_they_were_seen_without_managed_fields() -> None:
    cache = ChildCache()
    sts = _obj("StatefulSet", "redis", managedFields=[{"manager": "x"}], resourceVersion="7")
    assert cache.observe(api_version="apps/v1", kind="StatefulSet", obj=sts, deleted=False) == (
        "acme"
    )
    cache.observe(api_version="v1", kind="Namespace", obj=_obj("Namespace", NS), deleted=False)
    state = cache.state("acme", NS)
    got = state.children[("StatefulSet", NS, "redis")]
    assert got["apiVersion"] == "apps/v1"
    assert got["kind"] == "StatefulSet"
    assert got["spec"] == sts["spec"]
    assert got["metadata"]["resourceVersion"] == "7"
    assert "managedFields" not in got["metadata"]
    assert state.namespace is not None
    assert state.namespace["metadata"]["name"] == NS
    assert ("Namespace", "", NS) not in state.children
    # each read is a fresh copy: a reconcile cannot corrupt the cache by editing it
    got["spec"]["replicas"] = 99
    assert cache.state("acme", NS).children[("StatefulSet", NS, "redis")]["spec"]["replicas"] == 1


def test_secrets_are_kept_by_name_only() -> None:
    cache = ChildCache()
    secret = {**_obj("Secret", "clickhouse-credentials"), "data": {"password": "c2VjcmV0"}}
    cache.observe(api_version="v1", kind="Secret", obj=secret, deleted=False)
    state = cache.state("acme", NS)
    assert state.secrets == {"clickhouse-credentials"}
    assert not state.children
    assert b"c2VjcmV0" not in repr(cache).encode()
    cache.observe(api_version="v1", kind="Secret", obj=secret, deleted=True)
    assert cache.state("acme", NS).secrets == set()


def test_deletes_unlabelled_objects_and_forget() -> None:
    cache = ChildCache()
    svc = _obj("Service", "redis")
    cache.observe(api_version="v1", kind="Service", obj=svc, deleted=False)
    other = {"metadata": {"name": "x", "namespace": NS}}
    assert cache.observe(api_version="v1", kind="Service", obj=other, deleted=False) is None
    cache.observe(api_version="v1", kind="Service", obj=svc, deleted=True)
    assert cache.state("acme", NS).children == {}
    cache.observe(api_version="v1", kind="Service", obj=svc, deleted=False)
    cache.forget("acme")
    assert cache.state("acme", NS) == LiveState()


def test_seed_adds_what_a_list_found_but_keeps_newer_watch_data() -> None:
    cache = ChildCache()
    newer = _obj("Service", "redis", resourceVersion="9")
    cache.observe(api_version="v1", kind="Service", obj={**newer, "kind": "Service"}, deleted=False)
    listed = LiveState(
        namespace={**_obj("Namespace", NS), "kind": "Namespace"},
        children={
            ("Service", NS, "redis"): _obj("Service", "redis", resourceVersion="3"),
            ("ConfigMap", NS, "cfg"): _obj("ConfigMap", "cfg", resourceVersion="4"),
        },
        secrets={"redis-credentials"},
    )
    cache.seed("acme", listed)
    state = cache.state("acme", NS)
    assert state.children[("Service", NS, "redis")]["metadata"]["resourceVersion"] == "9"
    assert state.children[("ConfigMap", NS, "cfg")]["metadata"]["resourceVersion"] == "4"
    assert state.secrets == {"redis-credentials"}
    assert state.namespace is not None


def test_relist_drops_what_vanished_while_no_watch_was_open() -> None:
    cache = ChildCache()
    for name in ("a", "b"):
        cache.observe(api_version="v1", kind="Service", obj=_obj("Service", name), deleted=False)
    cache.observe(api_version="v1", kind="Secret", obj=_obj("Secret", "s1"), deleted=False)
    cache.observe(api_version="v1", kind="ConfigMap", obj=_obj("ConfigMap", "c"), deleted=False)
    touched = cache.relist(api_version="v1", kind="Service", objs=[_obj("Service", "b")])
    assert touched == {"acme"}
    state = cache.state("acme", NS)
    assert set(state.children) == {("Service", NS, "b"), ("ConfigMap", NS, "c")}
    cache.relist(api_version="v1", kind="Secret", objs=[])
    assert cache.state("acme", NS).secrets == set()


def test_an_answer_to_our_write_never_replaces_a_newer_watched_version() -> None:
    cache = ChildCache()
    watched = _obj("StatefulSet", "redis", resourceVersion="12")
    watched["status"] = {"readyReplicas": 1}
    cache.observe(api_version="apps/v1", kind="StatefulSet", obj=watched, deleted=False)
    answer = _obj("StatefulSet", "redis", resourceVersion="11")  # our apply, answered late
    cache.record(api_version="apps/v1", kind="StatefulSet", obj=answer, deleted=False)
    got = cache.state("acme", NS).children[("StatefulSet", NS, "redis")]
    assert got["metadata"]["resourceVersion"] == "12"
    assert got["status"] == {"readyReplicas": 1}
    newer = _obj("StatefulSet", "redis", resourceVersion="13")
    cache.record(api_version="apps/v1", kind="StatefulSet", obj=newer, deleted=False)
    got = cache.state("acme", NS).children[("StatefulSet", NS, "redis")]
    assert got["metadata"]["resourceVersion"] == "13"
    fresh = _obj("Service", "new", resourceVersion="5")  # not cached yet: recorded
    cache.record(api_version="v1", kind="Service", obj=fresh, deleted=False)
    assert ("Service", NS, "new") in cache.state("acme", NS).children
    cache.record(api_version="v1", kind="Service", obj=fresh, deleted=True)
    assert ("Service", NS, "new") not in cache.state("acme", NS).children


def test_children_are_kept_compressed_against_the_sample_dictionary() -> None:
    """What makes 500 tenants fit: a tenant's children round-trip exactly, at a small
    fraction of their JSON size, when compressed against another tenant's objects."""
    sample = builders.build(
        normalize.tenant_model({"metadata": {"name": "sample"}, "spec": {"plan": "growth"}})
    )
    cache = ChildCache(dictionary=dictionary_from(sample))
    plain = ChildCache()
    children = builders.build(
        normalize.tenant_model({"metadata": {"name": "acme-prod"}, "spec": {"plan": "starter"}})
    )
    for obj in children:
        kind, api = obj["kind"], obj["apiVersion"]
        for c in (cache, plain):
            c.observe(api_version=api, kind=kind, obj=obj, deleted=False)
    ns = "tenant-acme-prod"
    got = cache.state("acme-prod", ns)
    expected = {
        (o["kind"], ns, o["metadata"]["name"]): o for o in children if o["kind"] != "Namespace"
    }
    assert got.children == expected
    assert got.namespace == next(o for o in children if o["kind"] == "Namespace")
    assert plain.state("acme-prod", ns).children == expected
    json_size = len(dictionary_from(children))
    stored = sum(len(b) for b in cache._by_tenant["acme-prod"].values())
    assert stored * 5 < json_size, (stored, json_size)


def test_pods_are_kept_apart_from_children_and_never_go_back_in_time() -> None:
    """The ClickHouse pods feed the schema step, not apply/prune; the answer to the
    operator's own label patch is not replaced by an older watch event."""
    cache = ChildCache()

    def pod(version: str, labels: dict[str, str]) -> dict[str, Any]:
        obj = _obj("Pod", "ch-s0-r0-0", resourceVersion=version)
        obj["metadata"]["labels"].update(labels)
        obj["status"] = {"conditions": [{"type": "Ready", "status": "True", "reason": "x"}]}
        return obj

    cache.observe(api_version="v1", kind="Pod", obj=pod("10", {}), deleted=False)
    cache.record(
        api_version="v1", kind="Pod", obj=pod("12", {"tenantry.io/schema": "ready"}), deleted=False
    )
    cache.observe(api_version="v1", kind="Pod", obj=pod("11", {}), deleted=False)  # late
    state = cache.state("acme", NS)
    assert state.children == {}
    got = state.pods["ch-s0-r0-0"]
    assert got["metadata"]["labels"]["tenantry.io/schema"] == "ready"
    assert got["status"] == {"conditions": [{"type": "Ready", "status": "True"}]}
    cache.observe(api_version="v1", kind="Pod", obj=pod("13", {}), deleted=False)  # relabelled?
    assert (
        "tenantry.io/schema" not in cache.state("acme", NS).pods["ch-s0-r0-0"]["metadata"]["labels"]
    )
    cache.relist(api_version="v1", kind="Pod", objs=[])
    assert cache.state("acme", NS).pods == {}

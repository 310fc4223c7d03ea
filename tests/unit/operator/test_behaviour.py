"""What the builders promise apply and the rollout: restart only what must restart,
suspend scales to zero, Keeper only when needed, names the other steps rely on."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from tenantry_operator import backup_job, builders, restore_job
from tenantry_operator import model as m
from tenantry_operator.builders import backup, clickhouse, ingestion, render, restore

from tenantry.settings import from_mapping
from tests.support import selectors
from tests.unit.operator import fixtures

Obj = dict[str, Any]


def by_key(objects: list[Obj]) -> dict[tuple[str, str], Obj]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def with_clickhouse(model: m.TenantModel, **changes: Any) -> m.TenantModel:
    return dataclasses.replace(model, clickhouse=dataclasses.replace(model.clickhouse, **changes))


def pod_hash(obj: Obj) -> str:
    value: str = obj["spec"]["template"]["metadata"]["annotations"][m.ANNOTATION_CONFIG_HASH]
    return value


def cluster_xml(objects: list[Obj]) -> str:
    value: str = by_key(objects)[("ConfigMap", "clickhouse-config")]["data"]["cluster.xml"]
    return value


@pytest.mark.parametrize("change", [{"shards": 4}, {"replicas": 3}])
def test_scale_out_keeps_existing_hosts(change: dict[str, int]) -> None:
    before_model = fixtures.model("tenant-sharded")
    after_model = with_clickhouse(before_model, **change)
    before = builders.build(before_model)
    after = builders.build(after_model)
    old_hosts = {h.name for h in before_model.clickhouse.hosts}
    new_hosts = {h.name for h in after_model.clickhouse.hosts} - old_hosts
    assert new_hosts
    assert clickhouse.config_hashes(after_model).items() >= (
        clickhouse.config_hashes(before_model).items()
    )
    b, a = by_key(before), by_key(after)
    for host in old_hosts:
        # Not just the hash: nothing about an existing host changes, so apply writes nothing.
        assert a[("StatefulSet", host)] == b[("StatefulSet", host)]
        assert a[("ConfigMap", f"{host}-config")] == b[("ConfigMap", f"{host}-config")]
        assert a[("Service", host)] == b[("Service", host)]
    for host in new_hosts:
        assert ("StatefulSet", host) in a
        assert f"<host>{host}.tenant-globex.svc.cluster.local</host>" in cluster_xml(after)
        assert host not in cluster_xml(before)
    assert cluster_xml(after) != cluster_xml(before)


@pytest.mark.parametrize(
    "change",
    [
        {"settings": (("max_concurrent_queries", "300"),)},
        {"version": "25.8", "image": "clickhouse/clickhouse-server:25.8"},
        {"resources": m.Resources("2", "8", "16Gi", "16Gi")},
    ],
    ids=["settings", "version", "resources"],
)
def test_restart_relevant_change_changes_every_host_hash(change: dict[str, Any]) -> None:
    before_model = fixtures.model("tenant-sharded")
    after_model = with_clickhouse(before_model, **change)
    before = clickhouse.config_hashes(before_model)
    after = clickhouse.config_hashes(after_model)
    assert before.keys() == after.keys()
    assert all(before[h] != after[h] for h in before)
    assert len(set(after.values())) == len(after)  # macros differ per host
    for sts in clickhouse.statefulsets(after_model):
        assert pod_hash(sts) == after[sts["metadata"]["name"]]
        assert len(pod_hash(sts)) == 16


def test_settings_reach_every_host_config() -> None:
    model = fixtures.model("tenant-sharded")
    for cm in clickhouse.config_maps(model)[1:]:
        xml = cm["data"]["host.xml"]
        assert (
            "<max_server_memory_usage_to_ram_ratio>0.8</max_server_memory_usage_to_ram_ratio>"
            in xml
        )
        assert "<cluster>tenant</cluster>" in xml


def test_invalid_setting_name_is_refused() -> None:
    model = with_clickhouse(fixtures.model("tenant-starter"), settings=(("x><evil", "1"),))
    with pytest.raises(ValueError, match="setting name"):
        builders.build(model)


def test_setting_values_are_xml_escaped() -> None:
    model = with_clickhouse(fixtures.model("tenant-starter"), settings=(("display_name", "a<&b"),))
    xml = clickhouse.host_xml(model, m.Host(0, 0))
    assert "<display_name>a&lt;&amp;b</display_name>" in xml


def _replicas(objects: list[Obj]) -> dict[str, int | None]:
    return {
        f"{o['kind']}/{o['metadata']['name']}": o["spec"].get("replicas")
        for o in objects
        if o["kind"] in ("StatefulSet", "Deployment")
    }


@pytest.mark.parametrize("name", sorted(fixtures.EXAMPLES))
def test_suspend_scales_everything_to_zero(name: str) -> None:
    model = dataclasses.replace(fixtures.model(name), suspend=True)
    objects = builders.build(model)
    replicas = _replicas(objects)
    assert replicas
    assert set(replicas.values()) == {0}
    kinds = {o["kind"] for o in objects}
    assert "HorizontalPodAutoscaler" not in kinds
    for cron in (o for o in objects if o["kind"] == "CronJob"):
        assert cron["spec"]["suspend"] is True
    # Volumes stay: scaling down never deletes claims.
    for o in objects:
        if o["kind"] == "StatefulSet":
            assert o["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Retain"


def test_resume_restores_replicas_and_hpa() -> None:
    model = fixtures.model("tenant-sharded")
    replicas = _replicas(builders.build(model))
    assert replicas["StatefulSet/keeper"] == 3
    assert replicas["StatefulSet/redis"] == 1
    assert all(replicas[f"StatefulSet/{h.name}"] == 1 for h in model.clickhouse.hosts)
    # The HPA owns the count: the Deployment leaves spec.replicas out.
    assert replicas["Deployment/ingestion"] is None
    hpa = by_key(builders.build(model))[("HorizontalPodAutoscaler", "ingestion")]
    assert hpa["spec"]["minReplicas"] == 2
    assert hpa["spec"]["maxReplicas"] == 8
    assert hpa["spec"]["scaleTargetRef"]["name"] == "ingestion"


def test_fixed_ingestion_replicas_and_pdb() -> None:
    model = fixtures.model("tenant-starter")
    assert ingestion.desired_replicas(model) == 1
    assert ingestion.pod_disruption_budgets(model) == []
    two = dataclasses.replace(model, ingestion=dataclasses.replace(model.ingestion, replicas=2))
    (pdb,) = ingestion.pod_disruption_budgets(two)
    assert pdb["spec"]["minAvailable"] == 1
    assert ingestion.horizontal_pod_autoscalers(two) == []


def test_no_keeper_for_a_single_replica() -> None:
    model = fixtures.model("tenant-starter")
    assert model.clickhouse.replicas == 1
    objects = builders.build(model)
    assert not [o for o in objects if "keeper" in o["metadata"]["name"]]
    assert not [o for o in objects if o["metadata"]["labels"][m.LABEL_COMPONENT] == "keeper"]
    assert "<zookeeper>" not in cluster_xml(objects)
    assert not [o for o in objects if o["kind"] == "PodDisruptionBudget"]


def test_keeper_quorum_config() -> None:
    model = fixtures.model("tenant-sharded")
    objects = by_key(builders.build(model))
    xml = objects[("ConfigMap", "keeper-config")]["data"]["keeper_server.xml"]
    for i in range(3):
        host = f"keeper-{i}.keeper-headless.tenant-globex.svc.cluster.local"
        assert f"<id>{i + 1}</id>" in xml
        assert f"<hostname>{host}</hostname>" in xml
        assert f"<host>{host}</host>" in cluster_xml(list(objects.values()))
    assert xml.count("<port>9234</port>") == 3
    assert objects[("Service", "keeper-headless")]["spec"]["clusterIP"] == "None"
    assert objects[("Service", "keeper-headless")]["spec"]["publishNotReadyAddresses"] is True
    assert objects[("PodDisruptionBudget", "keeper")]["spec"]["maxUnavailable"] == 1


def test_cluster_topology_and_users() -> None:
    model = fixtures.model("tenant-sharded")
    objects = builders.build(model)
    xml = cluster_xml(objects)
    assert xml.count("<shard>") == 3
    assert xml.count("<internal_replication>true</internal_replication>") == 3
    assert xml.count("<replica>") == 6
    assert "<tenant>" in xml
    users = by_key(objects)[("ConfigMap", "clickhouse-config")]["data"]["users.xml"]
    for user in ("ADMIN", "WRITER", "READER"):
        assert f'<password from_env="CLICKHOUSE_{user}_PASSWORD"/>' in users
    keys = by_key(objects)
    # schema before traffic: only pods the operator labelled after provisioning them
    assert keys[("Service", "clickhouse")]["spec"]["selector"] == {
        "app.kubernetes.io/instance": "globex",
        "app.kubernetes.io/component": "clickhouse",
        "tenantry.io/schema": "ready",
    }
    sts = keys[("StatefulSet", "ch-s2-r1")]
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert "tenantry.io/schema" not in labels  # a new pod starts out of the Service
    host_service = keys[("Service", "ch-s2-r1")]["spec"]["selector"]
    assert "tenantry.io/schema" not in host_service  # the operator provisions through it
    assert labels["tenantry.io/shard"] == "2"
    assert labels["tenantry.io/replica"] == "1"
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "200Gi"
    pdbs = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    assert {p["metadata"]["name"] for p in pdbs} >= {"ch-s0", "ch-s1", "ch-s2"}


def test_network_policies() -> None:
    objects = by_key(builders.build(fixtures.model("tenant-starter")))
    names = {n for k, n in objects if k == "NetworkPolicy"}
    assert names == {
        "default-deny",
        "allow-same-namespace",
        "allow-dns-egress",
        "allow-ingestion-clients",
        "allow-platform",
    }
    platform = objects[("NetworkPolicy", "allow-platform")]["spec"]["ingress"][0]["from"][0]
    assert platform["namespaceSelector"]["matchExpressions"][0]["values"] == ["tenantry-system"]
    bare = dataclasses.replace(fixtures.model("tenant-starter"), platform_namespaces=())
    assert ("NetworkPolicy", "allow-platform") not in by_key(builders.build(bare))


def test_ingestion_may_reach_the_control_plane_internal_listener_and_nothing_else_there() -> None:
    url = "http://tenantry-controlplane-internal.tenantry-system.svc:8001"
    model = dataclasses.replace(fixtures.model("tenant-starter"), controlplane_url=url)
    objects = by_key(builders.build(model))
    policy = objects[("NetworkPolicy", "allow-controlplane-egress")]["spec"]
    ingestion_pods = objects[("Deployment", "ingestion")]["spec"]["template"]["metadata"]
    assert selectors.matches(policy["podSelector"], ingestion_pods["labels"])
    clickhouse_pods = objects[("StatefulSet", "ch-s0-r0")]["spec"]["template"]["metadata"]
    assert not selectors.matches(policy["podSelector"], clickhouse_pods["labels"])
    assert policy["policyTypes"] == ["Egress"]
    (rule,) = policy["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8001}]
    (peer,) = rule["to"]
    assert peer["namespaceSelector"]["matchExpressions"][0]["values"] == ["tenantry-system"]
    # The port comes from the URL, the scheme's default without one.
    https = dataclasses.replace(model, controlplane_url="https://cp.example")
    rule = by_key(builders.build(https))[("NetworkPolicy", "allow-controlplane-egress")]
    assert rule["spec"]["egress"][0]["ports"] == [{"protocol": "TCP", "port": 443}]
    # No control plane to call (keys given to the pods instead): no such opening.
    bare = dataclasses.replace(model, controlplane_url=None)
    assert ("NetworkPolicy", "allow-controlplane-egress") not in by_key(builders.build(bare))


def test_reclaim_policy_reaches_volume_claims() -> None:
    retain = by_key(builders.build(fixtures.model("tenant-starter")))
    delete = by_key(builders.build(fixtures.model("tenant-suspended")))
    policy = "persistentVolumeClaimRetentionPolicy"
    assert retain[("StatefulSet", "redis")]["spec"][policy]["whenDeleted"] == "Retain"
    assert delete[("StatefulSet", "redis")]["spec"][policy]["whenDeleted"] == "Delete"


def test_backup_job_reads_the_env_the_builder_renders() -> None:
    """The CronJob's env, secrets stood in for, is what the job's settings accept: the
    hosts per shard in the order they are tried, the prefix verbatim (the job quotes it
    for SQL itself)."""
    model = fixtures.model("tenant-sharded")
    assert model.backup is not None
    odd = dataclasses.replace(model, backup=dataclasses.replace(model.backup, prefix="it's/"))
    env = {
        e["name"]: e["value"] if "value" in e else f"secret:{e['valueFrom']['secretKeyRef']['key']}"
        for e in backup.env(odd)
    }
    settings = from_mapping(backup_job.JobSettings, env)
    assert settings.prefix == "it's/"
    assert settings.hosts[2] == [
        "ch-s2-r0.tenant-globex.svc.cluster.local",
        "ch-s2-r1.tenant-globex.svc.cluster.local",
    ]
    assert len(settings.hosts) == 3
    assert (settings.database, settings.retention) == (model.database, 14)
    assert settings.clickhouse_password.get_secret_value() == "secret:admin-password"
    for key in ("admin-password", "access-key-id", "secret-access-key"):
        assert f"secret:{key}" not in repr(settings)


def test_backup_cronjob() -> None:
    objects = by_key(builders.build(fixtures.model("tenant-sharded")))
    cron = objects[("CronJob", "backup")]["spec"]
    assert cron["schedule"] == "0 3 * * *"
    assert cron["concurrencyPolicy"] == "Forbid"
    assert cron["suspend"] is False
    assert ("CronJob", "backup") not in by_key(builders.build(fixtures.model("tenant-starter")))


def test_static_server_config_is_part_of_every_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    model = fixtures.model("tenant-sharded")
    before = clickhouse.config_hashes(model)
    monkeypatch.setattr(clickhouse, "server_xml", lambda: "<clickhouse><changed/></clickhouse>")
    after = clickhouse.config_hashes(model)
    assert all(before[h] != after[h] for h in before)


def test_every_template_is_used() -> None:
    """A template no builder names is dead code that reviewers would still read."""
    root = render.templates_dir()
    sources = "".join(p.read_text() for p in Path(builders.__file__).parent.glob("*.py"))
    templates = sorted(str(p.relative_to(root)) for p in root.rglob("*.j2"))
    assert templates
    assert [t for t in templates if f'"{t}"' not in sources] == []


_UNITS = {"m": 0.001, "": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def _quantity(value: str) -> float:
    number = value.rstrip("abcdefghijklmnopqrstuvwxyzKMGT")
    return float(number) * _UNITS[value[len(number) :]]


@pytest.mark.parametrize("name", sorted(fixtures.EXAMPLES))
def test_workloads_fit_the_namespace_quota(name: str) -> None:
    """At full size (HPA at max, one surge pod) the stack stays inside its ResourceQuota."""
    model = dataclasses.replace(fixtures.model(name), suspend=False)
    objects = builders.build(model)
    hard = by_key(objects)[("ResourceQuota", "quota")]["spec"]["hard"]
    used = {"limits.cpu": 0.0, "limits.memory": 0.0, "requests.storage": 0.0, "pods": 0.0}
    for obj in objects:
        if obj["kind"] not in ("StatefulSet", "Deployment"):
            continue
        count = obj["spec"].get("replicas")
        if count is None:
            scaling = model.ingestion.autoscaling
            assert scaling is not None
            count = scaling.max_replicas
        if obj["kind"] == "Deployment":
            count += 1  # maxSurge
        for container in obj["spec"]["template"]["spec"]["containers"]:
            used["limits.cpu"] += count * _quantity(container["resources"]["limits"]["cpu"])
            used["limits.memory"] += count * _quantity(container["resources"]["limits"]["memory"])
        for claim in obj["spec"].get("volumeClaimTemplates", []):
            used["requests.storage"] += count * _quantity(
                claim["spec"]["resources"]["requests"]["storage"]
            )
        used["pods"] += count
    for key, value in used.items():
        assert value <= _quantity(hard[key]), key


def test_restore_job_reads_the_env_the_builder_renders() -> None:
    """The restore Job's env is what the restore job's settings accept: the backup job's
    hosts and access, plus what to restore, whether to overwrite, and the retention."""
    model = fixtures.model("tenant-sharded")
    manifest = restore.job(
        model, name="r1", source_tenant="acme", backup_name="20261206T031500.123Z", overwrite=True
    )
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["tenantry", "restore"]
    env = {
        e["name"]: e["value"] if "value" in e else f"secret:{e['valueFrom']['secretKeyRef']['key']}"
        for e in container["env"]
    }
    settings = from_mapping(restore_job.RestoreSettings, env)
    assert (settings.source, settings.backup, settings.overwrite) == (
        "acme",
        "20261206T031500.123Z",
        True,
    )
    assert settings.hosts == backup.hosts(model)
    assert settings.retention_days == model.retention_days
    assert "TENANTRY_BACKUP_RETENTION" not in env
    assert manifest["spec"]["backoffLimit"] == 0


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector of matchLabels and In-expressions, as the API server reads it."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        assert expr["operator"] == "In"
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def test_only_clickhouse_and_the_backup_and_restore_jobs_reach_the_object_store() -> None:
    model = fixtures.model("tenant-sharded")
    (egress,) = [
        p
        for p in builders.network.network_policies(model)
        if p["metadata"]["name"] == "allow-backup-egress"
    ]
    selector = egress["spec"]["podSelector"]
    (cron,) = backup.cron_jobs(model)
    job = restore.job(model, name="r1", source_tenant="", backup_name="latest", overwrite=False)
    backup_pod = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    restore_pod = job["spec"]["template"]["metadata"]["labels"]
    assert _selects(selector, backup_pod)
    assert _selects(selector, restore_pod)
    host = clickhouse.statefulset(model, m.Host(0, 0))
    assert _selects(selector, host["spec"]["template"]["metadata"]["labels"])
    for deployment in ingestion.deployments(model):
        assert not _selects(selector, deployment["spec"]["template"]["metadata"]["labels"])

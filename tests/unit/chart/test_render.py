"""The chart renders valid Kubernetes 1.33 objects, and each toggle does what it says."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support.wait import scaled
from tests.unit.chart import helm
from tests.unit.chart.helm import KUBE_VERSION, NAMESPACE, find, one, render

OP = "t-tenantry-operator"
CP = "t-tenantry-controlplane"

# Values that switch every optional object on, so all of them get schema-validated.
EVERYTHING = {
    "controlplane": {
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "tls": [{"hosts": ["tenantry.example.com"], "secretName": "tls"}],
            "hosts": [
                {"host": "tenantry.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}
            ],
        },
        "extraEnv": [{"name": "X", "value": "1"}],
        "tolerations": [{"key": "k", "operator": "Exists"}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
    },
    "operator": {
        "s3": {"endpoint": "https://s3.example.com", "existingSecret": "s3-creds"},
        "tenantImages": {"clickhouse": "mirror.example.com/clickhouse/clickhouse-server"},
        "verbose": True,
        "podAnnotations": {"a": "b"},
        "monitoringNamespaces": ["monitoring", "observability"],
    },
    "imagePullSecrets": [{"name": "regcred"}],
    "commonLabels": {"team": "data"},
}


@pytest.mark.parametrize("values", [{}, EVERYTHING], ids=["defaults", "everything"])
def test_objects_validate_against_kubernetes_schemas(values: helm.Obj) -> None:
    objs = render(values)
    assert objs
    for obj in objs:
        # strict: unknown fields are errors, as with `kubectl apply --validate=strict`
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


def test_helm_lint_is_clean() -> None:
    proc = subprocess.run(
        [
            str(helm.helm()),
            "lint",
            str(helm.CHART),
            "--strict",
            "--kube-version",
            KUBE_VERSION,
            "--values",
            str(helm.CHART / "ci" / "lint-values.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=scaled(120),
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[WARNING]" not in proc.stdout
    assert "[ERROR]" not in proc.stdout


def test_defaults_render_each_component() -> None:
    objs = render()
    assert helm.kinds(objs) == {
        ("CustomResourceDefinition", "tenants.tenantry.io"),
        ("CustomResourceDefinition", "dashboards.tenantry.io"),
        ("CustomResourceDefinition", "restores.tenantry.io"),
        ("ServiceAccount", OP),
        ("ClusterRole", OP),
        ("ClusterRoleBinding", OP),
        ("Deployment", OP),
        ("ServiceAccount", CP),
        ("ClusterRole", CP),
        ("ClusterRoleBinding", CP),
        ("ConfigMap", CP),
        ("Secret", f"{CP}-connections"),
        ("Deployment", CP),
        ("Service", CP),
        ("Service", f"{CP}-internal"),
        ("CronJob", f"{CP}-close-periods"),
    }
    for obj in objs:
        if obj["kind"] not in ("CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == NAMESPACE


def test_crd_copies_in_the_chart_match_the_generated_crds() -> None:
    repo = sorted(p.name for p in (helm.REPO / "crds").glob("*.yaml"))
    chart = sorted(p.name for p in (helm.CHART / "files" / "crds").glob("*.yaml"))
    assert chart == repo
    for name in repo:
        expected = (helm.REPO / "crds" / name).read_bytes()
        actual = (helm.CHART / "files" / "crds" / name).read_bytes()
        assert actual == expected, (
            f"charts/tenantry/files/crds/{name} is stale: "
            "cp crds/*.yaml charts/tenantry/files/crds/"
        )


def test_rendered_crds_are_the_generated_ones_kept_on_uninstall() -> None:
    rendered = {o["metadata"]["name"]: o for o in find(render(), "CustomResourceDefinition")}
    for path in sorted(Path(helm.REPO / "crds").glob("*.yaml")):
        generated = yaml.safe_load(path.read_text())
        crd = rendered[generated["metadata"]["name"]]
        assert crd["spec"] == generated["spec"]
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        for key, value in generated["metadata"].get("labels", {}).items():
            assert crd["metadata"]["labels"][key] == value


def test_crds_install_false_renders_no_crds() -> None:
    assert not find(render({"crds": {"install": False}}), "CustomResourceDefinition")


def test_operator_and_controlplane_can_be_disabled() -> None:
    objs = render({"operator": {"enabled": False}})
    assert not [o for o in objs if o["metadata"]["name"].startswith(OP)]
    assert find(objs, "Deployment", CP)

    objs = render({"controlplane": {"enabled": False}}, required=False)
    assert not [o for o in objs if o["metadata"]["name"].startswith(CP)]
    assert find(objs, "Deployment", OP)


def test_ingress_is_optional_and_points_at_the_service() -> None:
    assert not find(render(), "Ingress")
    ingress = one(render(EVERYTHING), "Ingress", CP)
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "tenantry.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": CP, "port": {"name": "http"}}
    assert ingress["spec"]["ingressClassName"] == "nginx"


def _containers(obj: helm.Obj) -> list[helm.Obj]:
    containers: list[helm.Obj] = obj["spec"]["template"]["spec"]["containers"]
    return containers


@pytest.mark.parametrize("name", [OP, CP])
def test_workloads_are_restricted_read_only_and_probed(name: str) -> None:
    deployment = one(render(), "Deployment", name)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = _containers(deployment)
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert "privileged" not in sc
    # the only writable path is an emptyDir at /tmp (HOME and TMPDIR in the image)
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"][0]["name"] == "tmp"
    assert "emptyDir" in pod["volumes"][0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] in ("/healthz", "/readyz")
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["limits"]["memory"]
    assert container["image"] == "tenantry:0.1.0"


def test_operator_runs_alone_with_its_settings() -> None:
    deployment = one(render(), "Deployment", OP)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = _containers(deployment)
    assert container["args"][0] == "operator"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TENANTRY_PLATFORM_NAMESPACES"] == NAMESPACE
    assert env["TENANTRY_RESYNC_SECONDS"] == "300"
    # the ingestion pods the operator creates run the chart's own image
    assert env["TENANTRY_INGESTION_IMAGE"] == "tenantry:0.1.0"
    assert not any(k.startswith("TENANTRY_S3") for k in env)
    # no monitoring namespace by default: the tenants' policies get no scrape rule
    assert "TENANTRY_MONITORING_NAMESPACES" not in env
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == OP


def test_operator_s3_credentials_come_from_a_secret() -> None:
    (container,) = _containers(one(render(EVERYTHING), "Deployment", OP))
    env = {e["name"]: e for e in container["env"]}
    assert env["TENANTRY_S3_ENDPOINT"]["value"] == "https://s3.example.com"
    for var, key in (
        ("TENANTRY_S3_ACCESS_KEY_ID", "access-key-id"),
        ("TENANTRY_S3_SECRET_ACCESS_KEY", "secret-access-key"),
    ):
        assert env[var]["valueFrom"]["secretKeyRef"] == {"name": "s3-creds", "key": key}
        assert "value" not in env[var]
    assert env["TENANTRY_CLICKHOUSE_IMAGE"]["value"] == (
        "mirror.example.com/clickhouse/clickhouse-server"
    )
    assert "TENANTRY_KEEPER_IMAGE" not in env
    message = helm.error({"operator": {"s3": {"endpoint": "https://s3.example.com"}}})
    assert "operator.s3.existingSecret" in message


def test_operator_env_is_read_by_the_operator_settings() -> None:
    """Every variable the chart gives the operator is one of its settings, and the
    operator reads the chart's values (secret references stand in as placeholders)."""
    from tenantry_operator.settings import Settings

    from tenantry.settings import env_name

    (container,) = _containers(one(render(EVERYTHING), "Deployment", OP))
    env = {e["name"]: e.get("value", f"<{e['name']}>") for e in container["env"]}
    known = {env_name(Settings, name) for name in Settings.model_fields}
    ours = {name for name in env if name.startswith("TENANTRY_")}
    assert ours <= known, ours - known
    settings = Settings.from_env(env)
    assert settings.platform_namespaces == (NAMESPACE,)
    assert settings.monitoring_namespaces == ("monitoring", "observability")
    assert settings.resync_seconds == float(env["TENANTRY_RESYNC_SECONDS"])
    assert settings.s3 is not None
    assert settings.s3.endpoint == "https://s3.example.com"


def test_controlplane_config_and_secret_references() -> None:
    objs = render()
    (container,) = _containers(one(objs, "Deployment", CP))
    assert container["args"] == [
        "controlplane",
        "serve",
        "--host=0.0.0.0",
        "--port=8000",
        "--internal-host=0.0.0.0",
        "--internal-port=8001",
        "--metrics-host=0.0.0.0",
        "--metrics-port=9464",
    ]
    assert container["envFrom"] == [{"configMapRef": {"name": CP}}]
    secret = one(objs, "Secret", f"{CP}-connections")
    assert secret["stringData"]["database-url"] == "postgresql://tenantry@db:5432/tenantry"
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env["TENANTRY_CP_DATABASE_URL"] == {"name": f"{CP}-connections", "key": "database-url"}
    config = one(objs, "ConfigMap", CP)["data"]
    assert config["TENANTRY_CP_KUBE_ENABLED"] == "true"
    assert config["TENANTRY_CP_CORS_ORIGINS"] == "[]"
    service = one(objs, "Service", CP)
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_controlplane_client_address_and_body_settings_reach_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ConfigMap's values, read the way the pod reads them (Settings from the
    environment), are the chart values: proxies as networks, byte counts as integers."""
    from controlplane.settings import Settings

    values = {
        "trustForwardedFor": True,
        "trustedProxies": ["10.0.0.0/8", "fd00::/8", "192.0.2.10"],
        "maxBodyBytes": 2 * 1024 * 1024,
        "maxLargeBodyBytes": 8 * 1024 * 1024,
    }
    config = one(render({"controlplane": {"config": values}}), "ConfigMap", CP)["data"]
    for name, value in config.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.trust_forwarded_for is True
    assert [str(n) for n in settings.trusted_proxies] == [
        "10.0.0.0/8",
        "fd00::/8",
        "192.0.2.10/32",
    ]
    assert (settings.max_body_bytes, settings.max_large_body_bytes) == (2 << 20, 8 << 20)
    defaults = one(render(), "ConfigMap", CP)["data"]
    assert defaults["TENANTRY_CP_TRUST_FORWARDED_FOR"] == "false"
    assert defaults["TENANTRY_CP_TRUSTED_PROXIES"] == "[]"
    fields = Settings.model_fields  # the defaults agree (the environment is set above)
    assert defaults["TENANTRY_CP_MAX_BODY_BYTES"] == str(fields["max_body_bytes"].default)
    assert defaults["TENANTRY_CP_MAX_LARGE_BODY_BYTES"] == str(
        fields["max_large_body_bytes"].default
    )


def test_controlplane_existing_secrets_and_configmap_are_referenced_not_created() -> None:
    values = {
        "controlplane": {
            "database": {"url": "", "existingSecret": "db", "secretKey": "dsn"},
            "redis": {"url": "", "existingSecret": "cache"},
            "existingConfigMap": "cp-config",
        }
    }
    objs = render(values)
    assert not find(objs, "Secret")
    assert not find(objs, "ConfigMap")
    (container,) = _containers(one(objs, "Deployment", CP))
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env["TENANTRY_CP_DATABASE_URL"] == {"name": "db", "key": "dsn"}
    assert env["TENANTRY_CP_REDIS_URL"] == {"name": "cache", "key": "redis-url"}
    assert container["envFrom"] == [{"configMapRef": {"name": "cp-config"}}]


def test_controlplane_needs_its_database() -> None:
    assert "controlplane.database.url" in helm.error(required=False)


def test_image_tag_and_digest() -> None:
    (container,) = _containers(one(render({"image": {"tag": "1.2.3"}}), "Deployment", OP))
    assert container["image"] == "tenantry:1.2.3"
    digest = "sha256:" + "a" * 64
    (container,) = _containers(one(render({"image": {"digest": digest}}), "Deployment", CP))
    assert container["image"] == f"tenantry@{digest}"


def test_internal_token_reaches_operator_and_controlplane() -> None:
    objs = render({"internalToken": {"existingSecret": "tenantry-internal"}})

    def env(name: str) -> dict[str, Any]:
        dep = one(objs, "Deployment", name)
        return {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}

    op = env(OP)
    assert op["TENANTRY_INTERNAL_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "tenantry-internal",
        "key": "internal-token",
    }
    # The operator (and through it the ingestion pods) calls the internal listener, at
    # the internal Service, whose port is the pods' own.
    internal = one(render(), "Service", f"{CP}-internal")
    assert internal["spec"]["type"] == "ClusterIP"
    assert internal["spec"]["ports"] == [
        {"name": "internal", "port": 8001, "targetPort": "internal", "protocol": "TCP"}
    ]
    assert op["TENANTRY_CONTROLPLANE_URL"]["value"] == (
        f"http://{CP}-internal.{internal['metadata']['namespace']}.svc:8001"
    )
    cp = env(CP)
    assert cp["TENANTRY_CP_INTERNAL_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == (
        "tenantry-internal"
    )
    plain = {
        e["name"]
        for e in one(render(), "Deployment", OP)["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert "TENANTRY_INTERNAL_TOKEN" not in plain


def test_close_periods_cronjob_runs_the_command_with_the_control_plane_settings() -> None:
    cron = one(render(), "CronJob", f"{CP}-close-periods")
    spec = cron["spec"]
    assert spec["schedule"] == "17 * * * *"
    assert spec["concurrencyPolicy"] == "Forbid"  # never two closings at once
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False  # it needs no Kubernetes API
    (container,) = pod["containers"]
    assert container["args"] == ["controlplane", "close-periods"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    (deployment_container,) = _containers(one(render(), "Deployment", CP))
    # the same configuration and secrets as the serving pods, nothing inlined
    assert container["envFrom"] == deployment_container["envFrom"]
    assert container["env"] == deployment_container["env"]
    env = {e["name"]: e for e in container["env"]}
    assert "secretKeyRef" in env["TENANTRY_CP_DATABASE_URL"]["valueFrom"]


def test_close_periods_cronjob_can_be_disabled_or_rescheduled() -> None:
    assert not find(render({"controlplane": {"closePeriods": {"enabled": False}}}), "CronJob")
    cron = one(
        render(
            {"controlplane": {"closePeriods": {"schedule": "5 0 * * *", "timeZone": "Etc/UTC"}}}
        ),
        "CronJob",
        f"{CP}-close-periods",
    )
    assert cron["spec"]["schedule"] == "5 0 * * *"
    assert cron["spec"]["timeZone"] == "Etc/UTC"
    bad = helm.run({"controlplane": {"closePeriods": {"schedule": "hourly"}}})
    assert bad.returncode != 0
    assert "schedule" in bad.stderr


def test_metrics_are_on_their_own_port_never_behind_the_public_service() -> None:
    objs = render()
    deployment = one(objs, "Deployment", CP)
    (container,) = _containers(deployment)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000, "internal": 8001, "metrics": 9464}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9464"
    public = one(objs, "Service", CP)
    assert [p["targetPort"] for p in public["spec"]["ports"]] == ["http"]
    assert not find(objs, "Service", f"{CP}-metrics")
    # Nor the internal API: the Ingress routes to the public Service only.
    ingress = one(render({"controlplane": {"ingress": {"enabled": True}}}), "Ingress", CP)
    backends = {
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {CP}

    objs = render({"controlplane": {"metrics": {"port": 9100, "service": {"enabled": True}}}})
    service = one(objs, "Service", f"{CP}-metrics")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9100, "targetPort": "metrics", "protocol": "TCP"}
    ]
    (container,) = _containers(one(objs, "Deployment", CP))
    assert "--metrics-port=9100" in container["args"]
    assert helm.run({"controlplane": {"metrics": {"port": 8000}}}).returncode != 0


def test_operator_metrics_are_on_an_internal_port() -> None:
    objs = render()
    deployment = one(objs, "Deployment", OP)
    (container,) = _containers(deployment)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9464}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TENANTRY_METRICS_LISTEN"] == "0.0.0.0:9464"
    assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == "9464"
    assert not [s for s in find(objs, "Service") if "operator" in s["metadata"]["name"]]
    objs = render({"operator": {"metrics": {"port": 9100, "podAnnotations": False}}})
    deployment = one(objs, "Deployment", OP)
    (container,) = _containers(deployment)
    assert {e["name"]: e.get("value") for e in container["env"]}["TENANTRY_METRICS_LISTEN"] == (
        "0.0.0.0:9100"
    )
    assert "prometheus.io/port" not in (
        deployment["spec"]["template"]["metadata"]["annotations"] or {}
    )
    assert helm.run({"operator": {"metrics": {"port": 8080}}}).returncode != 0


def _tenant_images(values: helm.Obj) -> dict[str, str]:
    """The images of a default Tenant's pods, built by the operator with the settings the
    chart gives it for these values."""
    from tenantry_operator import builders
    from tenantry_operator.normalize import tenant_model
    from tenantry_operator.settings import Settings

    (container,) = _containers(one(render(values), "Deployment", OP))
    env = {e["name"]: e.get("value", f"<{e['name']}>") for e in container["env"]}
    spec = {"clickhouse": {"replicas": 2}}  # with Keeper
    model = tenant_model(
        {"metadata": {"name": "acme"}, "spec": spec}, images=Settings.from_env(env).images
    )
    return {
        c["name"]: c["image"]
        for o in builders.build(model)
        if o["kind"] in ("StatefulSet", "Deployment")
        for c in o["spec"]["template"]["spec"]["containers"]
    }


def test_the_standins_values_select_the_locally_built_images() -> None:
    """values-standins.yaml points the operator at the images scripts/standin-images.sh
    builds (the references it lists), with no code change; the defaults stay official."""
    values = yaml.safe_load((helm.CHART / "values-standins.yaml").read_text())
    listed = subprocess.run(
        ["bash", str(helm.CHART.parents[1] / "scripts" / "standin-images.sh"), "--list"],
        capture_output=True,
        text=True,
        check=True,
        timeout=scaled(60),
    ).stdout.split()[::2]
    images = _tenant_images(values)
    assert {images["clickhouse"], images["keeper"], images["redis"]} <= set(listed), listed
    from tenantry.api.tenant import ClickHouseSpec

    version = ClickHouseSpec.model_fields["version"].default
    assert images["clickhouse"] == f"local/clickhouse-standin:{version}"
    defaults = _tenant_images({})
    assert defaults["clickhouse"].startswith("clickhouse/clickhouse-server:")
    assert defaults["keeper"].startswith("clickhouse/clickhouse-keeper:")
    assert defaults["redis"].startswith("redis:")

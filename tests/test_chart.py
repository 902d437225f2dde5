"""The Helm chart: lint, render for the main configurations, validate every manifest against the
Kubernetes schemas, check RBAC, security and that dashboards come from grafana/dashboards."""

from __future__ import annotations

import json
import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from loader.config import PROJECT_ROOT
from stand_ins import engines

CHART = PROJECT_ROOT / "chart"
HELM = shutil.which("helm", path=str(PROJECT_ROOT / ".venv" / "bin")) or shutil.which("helm")
KUBERNETES_VERSION = "1.30.0"
GRAPH = ["--set", "graph.tenantId=t", "--set", "graph.clientId=c", "--set", "graph.clientSecret=s3cr3t"]
CONFIGURATIONS = {
    "default": [],
    "external-database": [
        "--set",
        "database.external.enabled=true",
        "--set",
        "database.external.host=db.example.edu",
        "--set",
        "database.existingSecret=jhm-db",
    ],
    "namespaces": ["--set", "collector.namespaces={jhub,teaching}"],
    "gpu-use": ["--set", "rbac.readNodes=true", "--set", "prometheus.url=http://p:9090", "--set", "prometheus.token=t"],
    "hub-api": ["--set", "hub.apiUrl=http://hub.jhub.svc:8081/hub/api", "--set", "hub.existingSecret=jhm-hub"],
    "adopted-schemas": ["--set", "database.rawSchema=public", "--set", "networkPolicy.enabled=false"],
    "own-service-account": [
        "--set",
        "serviceAccount.create=false",
        "--set",
        "serviceAccount.name=jhm",
        "--set",
        "rbac.create=false",
        "--set",
        "podLabels.team=rcs",
        "--set",
        "extraEnv[0].name=HTTPS_PROXY",
        "--set",
        "extraEnv[0].value=http://proxy:3128",
    ],
    "grafana-bundled": ["--set", "grafana.bundled.enabled=true"],
    "users-sync": GRAPH,
}

pytestmark = pytest.mark.skipif(HELM is None, reason="helm is installed by `make venv`")
# Get and list pods, and their measured use from the metrics API: nothing else.
POD_READER_RULES = [
    {"apiGroups": [""], "resources": ["pods", "persistentvolumeclaims"], "verbs": ["get", "list"]},
    {"apiGroups": ["metrics.k8s.io"], "resources": ["pods"], "verbs": ["get", "list"]},
]


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([HELM, *args], capture_output=True, text=True, check=check)


def render(*values: str) -> list[dict]:
    output = helm("template", "hub-metrics", str(CHART), "--namespace", "metrics", *values).stdout
    return [document for document in yaml.safe_load_all(output) if document]


def by_kind(documents: list[dict], kind: str) -> list[dict]:
    return [document for document in documents if document["kind"] == kind]


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_lint_and_every_manifest_validates(name):
    values = CONFIGURATIONS[name]
    lint = helm("lint", str(CHART), *values, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    documents = render(*values)
    assert documents
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def pod_specs(documents: list[dict]):
    for document in documents:
        if document["kind"] == "CronJob":
            yield document, document["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif document["kind"] in ("Job", "StatefulSet", "Deployment"):
            yield document, document["spec"]["template"]["spec"]


def test_rbac_is_exactly_get_and_list_pods():
    everywhere = render()
    assert [role["rules"] for role in by_kind(everywhere, "ClusterRole")] == [POD_READER_RULES]
    assert not by_kind(everywhere, "Role")
    some = render(*CONFIGURATIONS["namespaces"])
    assert not by_kind(some, "ClusterRole") and not by_kind(some, "ClusterRoleBinding")
    roles = by_kind(some, "Role")
    assert sorted(role["metadata"]["namespace"] for role in roles) == ["jhub", "teaching"]
    assert all(role["rules"] == POD_READER_RULES for role in roles)
    bindings = by_kind(some, "RoleBinding")
    assert all(
        binding["subjects"]
        == [{"kind": "ServiceAccount", "name": "hub-metrics-jupyterhub-metrics", "namespace": "metrics"}]
        for binding in bindings
    )


def test_pods_run_locked_down():
    for document, spec in pod_specs(render(*CONFIGURATIONS["grafana-bundled"], *GRAPH)):
        assert spec["securityContext"]["runAsNonRoot"] is True, document["metadata"]["name"]
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert container["resources"]["requests"] and container["resources"]["limits"]


def test_collector_cronjob():
    cronjob = next(c for c in by_kind(render(), "CronJob") if c["metadata"]["name"].endswith("-collect"))
    assert cronjob["spec"]["schedule"] == "*/5 * * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 270
    assert cronjob["spec"]["successfulJobsHistoryLimit"] == 3 and cronjob["spec"]["failedJobsHistoryLimit"] == 3
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["sh", "-c", "jupyterhub-metrics collect && jupyterhub-metrics build"]


def test_users_sync_only_with_graph_credentials():
    names = lambda docs: [c["metadata"]["name"] for c in by_kind(docs, "CronJob")]  # noqa: E731
    assert not any(name.endswith("-users-sync") for name in names(render()))
    with_graph = render(*GRAPH)
    assert any(name.endswith("-users-sync") for name in names(with_graph))
    secret = next(s for s in by_kind(with_graph, "Secret") if s["metadata"]["name"] == "hub-metrics-jupyterhub-metrics")
    assert secret["stringData"]["AZURE_CLIENT_SECRET"] == "s3cr3t"


def test_external_database_deploys_no_database():
    documents = render(*CONFIGURATIONS["external-database"])
    assert not by_kind(documents, "StatefulSet")
    assert (
        "DB_PASSWORD"
        not in next(
            s for s in by_kind(documents, "Secret") if s["metadata"]["name"] == "hub-metrics-jupyterhub-metrics"
        )["stringData"]
    )
    job = by_kind(documents, "Job")[0]
    env = {item["name"]: item for item in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DB_HOST"]["value"] == "db.example.edu"
    assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "jhm-db"


def test_default_deploys_timescaledb_with_storage_and_a_migration_hook():
    documents = render()
    statefulset = by_kind(documents, "StatefulSet")[0]
    assert statefulset["spec"]["template"]["spec"]["containers"][0]["image"].startswith("timescale/timescaledb:")
    assert statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "20Gi"
    job = by_kind(documents, "Job")[0]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    assert "jupyterhub-metrics db migrate" in job["spec"]["template"]["spec"]["containers"][0]["command"][-1]


def test_dashboards_come_from_grafana_dashboards_and_passwords_agree():
    documents = render(*CONFIGURATIONS["grafana-bundled"])
    configmap = next(c for c in by_kind(documents, "ConfigMap") if c["metadata"]["name"].endswith("-dashboards"))
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = {
        path.name: json.loads(path.read_text()) for path in (PROJECT_ROOT / "grafana" / "dashboards").glob("*.json")
    }
    assert {name: json.loads(text) for name, text in configmap["data"].items()} == shipped  # default schemas
    secret = next(s for s in by_kind(documents, "Secret") if s["metadata"]["name"] == "hub-metrics-jupyterhub-metrics")
    datasource = next(s for s in by_kind(documents, "Secret") if s["metadata"]["name"].endswith("-grafana-datasource"))
    provisioned = yaml.safe_load(next(iter(datasource["stringData"].values())))["datasources"][0]
    assert provisioned["uid"] == "jupyterhub-metrics"
    assert provisioned["secureJsonData"]["password"] == secret["stringData"]["READONLY_DB_PASSWORD"]
    assert by_kind(documents, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["image"].startswith(
        "grafana/"
    )


@pytest.mark.parametrize(
    "wrong",
    [
        ["--set", "collector.schedule=5"],
        ["--set", "collector.namespaces=jhub"],
        ["--set", "database.external.port=x"],
        ["--set", "grafana.bundled.enabled=yes"],
        ["--set", "unknownKey=1"],
    ],
)
def test_schema_rejects_wrong_types(wrong):
    result = helm("template", "x", str(CHART), *wrong, check=False)
    assert result.returncode != 0 and "schema" in (result.stderr + result.stdout).lower()


def test_notes_say_what_to_check():
    notes = helm("install", "hub-metrics", str(CHART), "--dry-run=client", "--namespace", "metrics").stdout
    assert "What to check now" in notes and "get cronjob hub-metrics-jupyterhub-metrics-collect" in notes
    assert "--from=cronjob/hub-metrics-jupyterhub-metrics-check check-now" in notes
    assert "resource-policy: keep" in notes


def secret_of(documents: list[dict]) -> dict:
    return next(s for s in by_kind(documents, "Secret") if s["metadata"]["name"] == "hub-metrics-jupyterhub-metrics")


def test_generated_secrets_outlive_an_uninstall_and_the_hmac_key_is_strong():
    secret = secret_of(render())
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    key = secret["stringData"]["EXPORT_HMAC_KEY"]
    from loader.export import hmac_key

    assert len(hmac_key(key)) == 32  # the loader accepts what the chart generates


def test_an_external_database_without_a_password_is_refused_at_render_time():
    result = helm(
        "template",
        "x",
        str(CHART),
        "--set",
        "database.external.enabled=true",
        "--set",
        "database.external.host=db.example.edu",
        check=False,
    )
    assert result.returncode != 0 and "database.password or database.existingSecret" in result.stderr
    assert render(
        "--set",
        "database.external.enabled=true",
        "--set",
        "database.external.host=db",
        "--set",
        "database.password=given",
    )


def test_only_this_release_and_grafana_reach_the_database():
    policy = by_kind(render(), "NetworkPolicy")[0]
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "database"
    sources = policy["spec"]["ingress"][0]["from"]
    assert sources[0] == {
        "podSelector": {
            "matchLabels": {"app.kubernetes.io/name": "jupyterhub-metrics", "app.kubernetes.io/instance": "hub-metrics"}
        }
    }
    assert sources[1]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "grafana"}}
    assert policy["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 5432}]
    assert not by_kind(render("--set", "networkPolicy.enabled=false"), "NetworkPolicy")
    assert not by_kind(render(*CONFIGURATIONS["external-database"]), "NetworkPolicy")


def test_only_the_collector_mounts_a_service_account_token():
    documents = render(*CONFIGURATIONS["grafana-bundled"], *GRAPH)
    mounts = {
        document["metadata"]["name"]: spec.get("automountServiceAccountToken")
        for document, spec in pod_specs(documents)
    }
    assert mounts.pop("hub-metrics-jupyterhub-metrics-collect") is True
    assert set(mounts.values()) == {False}, mounts
    assert by_kind(documents, "ServiceAccount")[0]["automountServiceAccountToken"] is False


def test_cronjobs_have_a_time_zone_and_their_own_deadlines_and_history():
    cronjobs = {
        c["metadata"]["name"].rsplit("-", 1)[-1]: c["spec"]
        for c in by_kind(
            render(*GRAPH, "--set", "check.failedJobsHistoryLimit=7", "--set", "timeZone=Europe/Berlin"), "CronJob"
        )
    }
    assert {spec["timeZone"] for spec in cronjobs.values()} == {"Europe/Berlin"}
    assert cronjobs["check"]["failedJobsHistoryLimit"] == 7 and cronjobs["collect"]["failedJobsHistoryLimit"] == 3
    assert (
        cronjobs["check"]["startingDeadlineSeconds"] == 3600 and cronjobs["collect"]["startingDeadlineSeconds"] == 120
    )
    assert {spec["timeZone"] for spec in [c["spec"] for c in by_kind(render(), "CronJob")]} == {"Etc/UTC"}


def test_service_account_rbac_labels_and_extra_env_are_the_admins_to_set():
    documents = render(*CONFIGURATIONS["own-service-account"])
    assert not by_kind(documents, "ServiceAccount") and not by_kind(documents, "ClusterRole")
    for document, spec in pod_specs(documents):
        if document["kind"] == "StatefulSet":
            continue
        assert spec["serviceAccountName"] == "jhm"
        env = {item["name"]: item.get("value") for item in spec["containers"][0]["env"]}
        assert env["HTTPS_PROXY"] == "http://proxy:3128", document["metadata"]["name"]
    labels = [
        document["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        for document in by_kind(documents, "CronJob")
    ]
    assert all(label["team"] == "rcs" for label in labels)
    annotated = render("--set", "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/x")
    assert by_kind(annotated, "ServiceAccount")[0]["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"
    }


def test_graph_ids_from_values_and_only_the_secret_from_an_existing_secret():
    documents = render(
        "--set",
        "graph.tenantId=tenant-1",
        "--set",
        "graph.clientId=client-1",
        "--set",
        "graph.existingSecret=jhm-graph",
    )
    cronjob = next(c for c in by_kind(documents, "CronJob") if c["metadata"]["name"].endswith("-users-sync"))
    env = {
        item["name"]: item
        for item in cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["AZURE_TENANT_ID"]["value"] == "tenant-1" and env["AZURE_CLIENT_ID"]["value"] == "client-1"
    assert env["AZURE_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "jhm-graph",
        "key": "AZURE_CLIENT_SECRET",
    }


def test_datasource_url_resolves_from_any_namespace_and_names_the_right_postgres():
    datasource = next(s for s in by_kind(render(), "Secret") if s["metadata"]["name"].endswith("-grafana-datasource"))
    provisioned = yaml.safe_load(next(iter(datasource["stringData"].values())))["datasources"][0]
    assert provisioned["url"] == "hub-metrics-jupyterhub-metrics-timescaledb.metrics.svc.cluster.local:5432"
    assert provisioned["jsonData"]["postgresVersion"] == engines.CHART_FLAVOUR.postgres * 100


def test_the_bundled_database_is_the_engine_release_the_tests_run():
    """The chart deploys the TimescaleDB release and PostgreSQL major that tests/test_timescaledb.py runs."""
    flavour = engines.CHART_FLAVOUR
    (statefulset,) = [s for s in by_kind(render(), "StatefulSet") if s["metadata"]["name"].endswith("-timescaledb")]
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"timescale/timescaledb:{flavour.timescaledb}-pg{flavour.postgres}"
    # The postgres images from 18 on refuse a volume at /var/lib/postgresql/data; their data lives under the major.
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["PGDATA"] == f"/var/lib/postgresql/{flavour.postgres}/docker"
    assert {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["data"] == "/var/lib/postgresql"
    values = yaml.safe_load((PROJECT_ROOT / "chart" / "values.yaml").read_text())
    assert values["database"]["external"]["postgresVersion"] == flavour.postgres


def database_statefulset(*values: str) -> dict:
    (statefulset,) = [
        s for s in by_kind(render(*values), "StatefulSet") if s["metadata"]["name"].endswith("-timescaledb")
    ]
    return statefulset["spec"]["template"]["spec"]


@pytest.mark.parametrize(
    ("volume", "exit_code"),
    [
        ({}, 0),  # a fresh install
        ({"pgdata/PG_VERSION": "16"}, 1),  # an earlier release's PostgreSQL 16 cluster, not yet upgraded
        ({"pgdata/PG_VERSION": "16", "18/docker/PG_VERSION": "18"}, 0),  # upgraded beside it
        ({"18/docker/PG_VERSION": "18"}, 0),  # this release's own cluster
    ],
)
def test_an_earlier_releases_volume_stops_the_database_instead_of_starting_an_empty_one(tmp_path, volume, exit_code):
    """The init container's own script, run by sh on a volume laid out as each release leaves it."""
    (init,) = database_statefulset()["initContainers"]
    for relative, text in volume.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text + "\n")
    script = init["command"][-1].replace("/var/lib/postgresql", str(tmp_path))
    env = {item["name"]: item["value"].replace("/var/lib/postgresql", str(tmp_path)) for item in init["env"]}
    result = subprocess.run([*init["command"][:-1], script], env=env, capture_output=True, text=True)
    assert result.returncode == exit_code
    if exit_code:
        assert result.stderr.count("\n") == 1
        assert "holds PostgreSQL 16 data" in result.stderr and "timescaledb.image.tag to a pg16 tag" in result.stderr


def test_an_image_before_postgres_18_keeps_the_earlier_layout():
    spec = database_statefulset("--set", "timescaledb.image.tag=2.17.2-pg16")
    assert "initContainers" not in spec
    (container,) = spec["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["PGDATA"] == "/var/lib/postgresql/data/pgdata"
    assert {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["data"] == "/var/lib/postgresql/data"


def test_a_bundled_image_tag_without_a_postgres_major_fails_in_one_line():
    result = subprocess.run(
        [HELM, "template", "x", str(CHART), "--set", "timescaledb.image.tag=latest"],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert 'timescaledb.image.tag "latest" names no PostgreSQL major' in result.stderr


def test_dashboards_carry_the_releases_schemas():
    documents = render(*CONFIGURATIONS["adopted-schemas"])
    configmap = next(c for c in by_kind(documents, "ConfigMap") if c["metadata"]["name"].endswith("-dashboards"))
    for text in configmap["data"].values():
        variables = {v["name"]: v for v in json.loads(text)["templating"]["list"]}
        assert (variables["raw_schema"]["query"], variables["analytics_schema"]["query"]) == ("public", "analytics")


def test_rules_are_set_from_values_without_rebuilding_the_image():
    documents = render("--set", "rules.sessionGapMinutes=45", "--set", "rules.gpuNodePatterns=a100\\,h100")
    cronjob = next(c for c in by_kind(documents, "CronJob") if c["metadata"]["name"].endswith("-collect"))
    env = {
        e["name"]: e.get("value")
        for e in cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert (env["SESSION_GAP_MINUTES"], env["GPU_NODE_PATTERNS"], env["IDLE_CPU_CORES"]) == ("45", "a100,h100", "0.05")


def test_gpu_use_from_prometheus_and_node_models_only_when_asked():
    plain = render()
    collector = next(c for c in by_kind(plain, "CronJob") if c["metadata"]["name"].endswith("-collect"))
    env = {e["name"]: e for e in collector["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PROMETHEUS_URL"]["value"] == "" and "PROMETHEUS_TOKEN" not in env
    assert env["COLLECT_READ_NODES"]["value"] == "false"
    assert not [role for role in by_kind(plain, "ClusterRole") if "nodes" in str(role["rules"])]
    asked = render(
        "--set",
        "prometheus.url=http://prometheus-operated.monitoring:9090",
        "--set",
        "prometheus.token=t0ken",
        "--set",
        "rbac.readNodes=true",
        *CONFIGURATIONS["namespaces"],
    )
    collector = next(c for c in by_kind(asked, "CronJob") if c["metadata"]["name"].endswith("-collect"))
    env = {e["name"]: e for e in collector["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PROMETHEUS_URL"]["value"] == "http://prometheus-operated.monitoring:9090"
    assert env["PROMETHEUS_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "PROMETHEUS_TOKEN"
    assert env["COLLECT_READ_NODES"]["value"] == "true"
    assert secret_of(asked)["stringData"]["PROMETHEUS_TOKEN"] == "t0ken"
    # Nodes belong to no namespace: a ClusterRole, get and list on nodes only, even when namespaces are listed.
    node_roles = [role for role in by_kind(asked, "ClusterRole") if role["metadata"]["name"].endswith("-node-reader")]
    assert [role["rules"] for role in node_roles] == [
        [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}]
    ]
    existing = render("--set", "prometheus.existingSecret=prom", "--set", "prometheus.url=http://p:9090")
    collector = next(c for c in by_kind(existing, "CronJob") if c["metadata"]["name"].endswith("-collect"))
    env = {e["name"]: e for e in collector["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PROMETHEUS_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "prom"
    assert "PROMETHEUS_TOKEN" not in secret_of(existing)["stringData"]


def test_the_hub_is_read_only_when_asked_and_its_token_stays_in_a_secret():
    def collector_env(rendered):
        collector = next(c for c in by_kind(rendered, "CronJob") if c["metadata"]["name"].endswith("-collect"))
        containers = collector["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        return {e["name"]: e for e in containers[0]["env"]}

    plain = collector_env(render())
    assert plain["HUB_API_URL"]["value"] == "" and "HUB_API_TOKEN" not in plain
    given = render("--set", "hub.apiUrl=http://hub.jhub.svc:8081/hub/api", "--set", "hub.apiToken=hub-t0ken")
    env = collector_env(given)
    assert env["HUB_API_URL"]["value"] == "http://hub.jhub.svc:8081/hub/api"
    assert env["HUB_API_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "HUB_API_TOKEN"
    assert secret_of(given)["stringData"]["HUB_API_TOKEN"] == "hub-t0ken"
    assert "hub-t0ken" not in json.dumps([doc for doc in given if doc.get("kind") != "Secret"])
    existing = render(*CONFIGURATIONS["hub-api"])
    assert collector_env(existing)["HUB_API_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "jhm-hub"
    assert "HUB_API_TOKEN" not in secret_of(existing)["stringData"]
    refused = helm("template", "x", str(CHART), "--set", "hub.apiUrl=http://hub:8081/hub/api", check=False)
    assert refused.returncode != 0 and "hub.apiUrl needs hub.apiToken or hub.existingSecret" in refused.stderr


def test_the_allocation_alert_rules_reach_grafanas_sidecar_and_the_bundled_grafana_with_the_releases_schema():
    import yaml

    from grafana import alerts

    documents = render("--set", "database.analyticsSchema=accounting")
    configmap = next(c for c in by_kind(documents, "ConfigMap") if c["metadata"]["name"].endswith("-alerts"))
    assert configmap["metadata"]["labels"]["grafana_alert"] == "1"
    rules = yaml.safe_load(configmap["data"]["allocations.yaml"])["groups"][0]["rules"]
    assert [rule["uid"] for rule in rules] == [rule["uid"] for rule in alerts.provisioning()["groups"][0]["rules"]]
    assert all(" accounting.allocation_status " in rule["data"][0]["model"]["rawSql"] for rule in rules)
    bundled = render("--set", "grafana.bundled.enabled=true", "--set", "grafana.alerts.enabled=false")
    configmap = next(c for c in by_kind(bundled, "ConfigMap") if c["metadata"]["name"].endswith("-alerts"))
    assert "grafana_alert" not in configmap["metadata"]["labels"]
    grafana = next(d for d in by_kind(bundled, "Deployment") if d["metadata"]["name"].endswith("-grafana"))
    mounts = {m["name"]: m["mountPath"] for m in grafana["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["alerts"] == "/etc/grafana/provisioning/alerting"

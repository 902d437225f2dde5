"""`collect` end to end against a real PostgreSQL: one transaction per run, replays, failures, skips."""

import json
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import psycopg
import pytest
from typer.testing import CliRunner

from loader.cli import app
from loader.collect import collect, pods_from_file
from loader.config import PROJECT_ROOT, DatabaseSettings
from loader.errors import LoaderError
from stand_ins.kubernetes import KubeApiStub
from tests.pod_factory import KUBESPAWNER_6_POD, KUBESPAWNER_7_POD, pod, pod_list, pod_metrics

AT = "2026-11-02T10:00:00+00:00"


def write_pods(tmp_path, *pods, name="pods.json"):
    path = tmp_path / name
    path.write_text(json.dumps(pod_list(*pods)), encoding="utf-8")
    return path


def count(conn, table="container_observations"):
    return conn.execute(f"select count(*) from raw.{table}").fetchone()[0]


def run_cli(database: DatabaseSettings, monkeypatch, *args):
    for key, value in database.environment().items():
        monkeypatch.setenv(key, value)
    return CliRunner().invoke(app, list(args))


def test_collect_from_file_records_rows_and_run(migrated, conn, tmp_path):
    anonymous = pod(
        KUBESPAWNER_6_POD,
        metadata__name="jupyter-x",
        metadata__annotations=None,
        metadata__labels={"component": "singleuser-server"},
    )
    anonymous["spec"]["containers"][0]["env"] = []
    unscheduled = pod(metadata__name="jupyter-unscheduled", spec__nodeName=None)
    hub = pod(metadata__name="hub-1", metadata__labels={"component": "hub"})
    path = write_pods(tmp_path, KUBESPAWNER_7_POD, KUBESPAWNER_6_POD, anonymous, unscheduled, hub)
    settings = replace(migrated, collect=replace(migrated.collect, cluster="campus", email_domain="example.edu"))
    at = datetime.fromisoformat(AT)

    result = collect(settings, pods_from_file(path, settings.collect.selector), observed_at=at)

    assert (result.pods_listed, result.rows_recorded) == (4, 2)
    assert result.skip_reasons == {"no_identity": 1, "no_node": 1}
    rows = conn.execute(
        "select user_email, pod_name, node_name, container_base, container_version, gpu_count, cluster,"
        ' server_name, collector_run_id, "timestamp" from raw.container_observations order by 1'
    ).fetchall()
    assert rows == [
        (
            "bob.smith@example.edu",
            "jupyter-bob-2esmith",
            "cpu-standard-03",
            "scipy-notebook",
            "latest",
            0,
            "campus",
            "",
            result.run_id,
            at,
        ),
        (
            "jane.doe@example.edu",
            "jupyter-jane-doe---2f1a9c3e--thesis",
            "gpu-a100-01",
            "pytorch-notebook",
            "2.5-cuda12",
            2,
            "campus",
            "thesis",
            result.run_id,
            at,
        ),
    ]
    run = conn.execute(
        "select kind, status, pods_listed, rows_recorded, pods_skipped, skip_reasons, cluster, observed_at"
        " from raw.collector_runs where id = %s",
        (result.run_id,),
    ).fetchone()
    assert run == ("collect", "succeeded", 4, 2, 2, {"no_identity": 1, "no_node": 1}, "campus", at)


def test_replaying_the_same_file_at_the_same_time_adds_no_rows(migrated, database, conn, tmp_path, monkeypatch):
    path = write_pods(tmp_path, KUBESPAWNER_7_POD, KUBESPAWNER_6_POD)
    first = run_cli(database, monkeypatch, "collect", "--from-file", str(path), "--at", AT)
    assert first.exit_code == 0, first.output
    second = run_cli(database, monkeypatch, "collect", "--from-file", str(path), "--at", AT)
    assert second.exit_code == 0, second.output
    assert "0 rows recorded, 2 already recorded" in second.output
    assert count(conn) == 2
    assert conn.execute("select count(*) from raw.collector_runs where status = 'succeeded'").fetchone()[0] == 2


def test_collect_through_the_kubernetes_api(migrated, database, conn, tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with KubeApiStub(
        [KUBESPAWNER_7_POD, KUBESPAWNER_6_POD, pod(metadata__name="other", metadata__namespace="x")]
    ) as stub:
        monkeypatch.setenv("KUBECONFIG", str(stub.write_kubeconfig(tmp_path / "kubeconfig")))
        stub.faults = [500]
        result = run_cli(
            database, monkeypatch, "collect", "--namespace", "jhub", "--cluster", "c1", "--email-domain", "example.edu"
        )
    assert result.exit_code == 0, result.output
    assert count(conn) == 2
    assert [path for path, _ in stub.requests if path.startswith("/api/v1")] == [
        *["/api/v1/namespaces/jhub/pods"] * 2,
        "/api/v1/namespaces/jhub/persistentvolumeclaims",  # users' storage (COLLECT_STORAGE)
    ]


def test_forbidden_api_records_a_failed_run_and_no_rows(migrated, database, conn, tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with KubeApiStub([KUBESPAWNER_7_POD]) as stub:
        monkeypatch.setenv("KUBECONFIG", str(stub.write_kubeconfig(tmp_path / "kubeconfig", token="s3cr3t-token")))
        stub.faults = [403]
        result = run_cli(database, monkeypatch, "collect")
    assert result.exit_code == 1
    assert "RBAC" in result.output and "s3cr3t-token" not in result.output
    assert count(conn) == 0
    status, error = conn.execute("select status, error from raw.collector_runs").fetchone()
    assert status == "failed" and "403" in error


def test_database_failure_mid_write_leaves_no_rows_and_a_failed_run(migrated, conn, tmp_path):
    # A row the database refuses (here a constraint an admin added) fails the write after COPY has already
    # sent the good rows: none of them may stay.
    conn.execute(
        "alter table raw.container_observations add constraint no_retired_nodes check (node_name <> 'retired-1')"
    )
    conn.commit()
    retired = pod(metadata__name="jupyter-retired", spec__nodeName="retired-1")
    path = write_pods(tmp_path, KUBESPAWNER_7_POD, retired)
    with pytest.raises(LoaderError, match="nothing was written"):
        collect(migrated, pods_from_file(path, migrated.collect.selector), observed_at=datetime.fromisoformat(AT))
    assert count(conn) == 0
    status, error, rows = conn.execute("select status, error, rows_recorded from raw.collector_runs").fetchone()
    assert (status, rows) == ("failed", 0) and "no_retired_nodes" in error


def test_a_pod_created_in_year_one_is_skipped_and_the_others_stored(migrated, conn, tmp_path):
    ancient = pod(metadata__name="jupyter-ancient", metadata__creationTimestamp="0001-01-01T00:00:00Z")
    path = write_pods(tmp_path, KUBESPAWNER_7_POD, ancient)
    result = collect(migrated, pods_from_file(path, migrated.collect.selector), observed_at=datetime.fromisoformat(AT))
    assert (result.rows_recorded, result.skip_reasons) == (1, {"malformed": 1})


def test_unreachable_database_is_one_line_and_non_zero(tmp_path, monkeypatch):
    path = write_pods(tmp_path, KUBESPAWNER_7_POD)
    unreachable = DatabaseSettings(host="127.0.0.1", port=1, name="nope", password="pa55word")
    result = run_cli(unreachable, monkeypatch, "collect", "--from-file", str(path))
    assert result.exit_code == 1
    message = result.output.strip()
    assert message.startswith("Error: cannot connect to PostgreSQL at postgres@127.0.0.1:1/nope")
    assert "\n" not in message and "pa55word" not in message


def test_missing_tables_say_to_migrate(database, tmp_path, monkeypatch):
    path = write_pods(tmp_path, KUBESPAWNER_7_POD)
    result = run_cli(database, monkeypatch, "collect", "--from-file", str(path))
    assert result.exit_code == 1
    assert "db migrate" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not valid JSON"), ('{"kind": "Status"}', "no `items` list")],
)
def test_bad_pod_files_are_one_line_errors(migrated, database, tmp_path, monkeypatch, content, message):
    path = tmp_path / "pods.json"
    path.write_text(content)
    result = run_cli(database, monkeypatch, "collect", "--from-file", str(path))
    assert result.exit_code == 1 and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_bad_at_and_user_from_are_clear(migrated, database, tmp_path, monkeypatch):
    path = write_pods(tmp_path, KUBESPAWNER_7_POD)
    bad_at = run_cli(database, monkeypatch, "collect", "--from-file", str(path), "--at", "last tuesday")
    assert bad_at.exit_code == 2 and "ISO 8601" in bad_at.output
    bad_source = run_cli(database, monkeypatch, "collect", "--from-file", str(path), "--user-from", "header:x")
    assert bad_source.exit_code == 2 and "--user-from" in bad_source.output


def test_user_from_env_first(migrated, database, conn, tmp_path, monkeypatch):
    path = write_pods(tmp_path, KUBESPAWNER_7_POD)
    result = run_cli(
        database,
        monkeypatch,
        "collect",
        "--from-file",
        str(path),
        "--user-from",
        "env:GIT_AUTHOR_EMAIL,annotation:hub.jupyter.org/username",
    )
    assert result.exit_code == 0, result.output
    assert conn.execute("select user_email from raw.container_observations").fetchone()[0] == "jdoe@cs.example.edu"


def test_two_hubs_with_the_same_user_and_pod_name_are_both_stored(migrated, conn, tmp_path):
    staging = pod(metadata__namespace="jhub-staging", metadata__uid="another-uid", spec__nodeName="cpu-node-2")
    listed_twice = pod(KUBESPAWNER_7_POD)
    path = write_pods(tmp_path, KUBESPAWNER_7_POD, staging, listed_twice)
    for at in ("2026-11-02T10:00:00+00:00", "2026-11-02T10:05:00+00:00"):
        result = collect(
            migrated, pods_from_file(path, migrated.collect.selector), observed_at=datetime.fromisoformat(at)
        )
        # Both hubs' pods at every collection; the same pod listed twice is one observation.
        assert result.rows_recorded == 2 and result.skip_reasons == {"duplicate_pod": 1}
    assert count(conn) + count(conn, "container_observations_overflow") == 4
    assert conn.execute(
        "select namespace, count(*) from raw.container_observations_overflow group by 1"
    ).fetchall() == [("jhub-staging", 2)]
    # A replay stores nothing again, in either table.
    again = collect(migrated, pods_from_file(path, migrated.collect.selector), observed_at=datetime.fromisoformat(AT))
    assert (again.rows_recorded, again.rows_already_recorded) == (0, 2)


def test_collection_keeps_users_seen_and_hub_username_current(migrated, conn, tmp_path):
    conn.execute(
        "insert into raw.users (email, user_id, first_seen, last_seen)"
        " values ('jane.doe@example.edu', 'old-id', '2024-01-01T00:00:00Z', '2024-06-01T00:00:00Z')"
    )
    conn.commit()
    newcomer = pod(metadata__name="jupyter-sam", metadata__annotations={"hub.jupyter.org/username": "sam@example.edu"})
    path = write_pods(tmp_path, KUBESPAWNER_7_POD, newcomer)
    for at in (AT, "2026-11-02T10:05:00+00:00"):
        collect(migrated, pods_from_file(path, migrated.collect.selector), observed_at=datetime.fromisoformat(at))
    rows = conn.execute(
        "select email, user_id, first_seen, last_seen, directory_status from raw.users order by email"
    ).fetchall()
    assert rows == [
        # A known user's first_seen never moves; last_seen follows the newest observation.
        (
            "jane.doe@example.edu",
            "Jane.Doe@Example.edu",
            datetime.fromisoformat("2024-01-01T00:00:00+00:00"),
            datetime.fromisoformat("2026-11-02T10:05:00+00:00"),
            None,
        ),
        # A new user's first_seen is its first observation.
        (
            "sam@example.edu",
            "sam@example.edu",
            datetime.fromisoformat(AT),
            datetime.fromisoformat("2026-11-02T10:05:00+00:00"),
            None,
        ),
    ]


def test_strange_strings_are_stored_verbatim(migrated, conn, tmp_path):
    name = "Zoë.O'Brien\"; DROP TABLE users; --\t\\N@example.edu"
    tricky = pod(metadata__annotations={"hub.jupyter.org/username": name, "hub.jupyter.org/servername": "señor\\ 🚀"})
    path = write_pods(tmp_path, tricky)
    collect(migrated, pods_from_file(path, migrated.collect.selector), observed_at=datetime.fromisoformat(AT))
    assert conn.execute("select user_email, server_name from raw.container_observations").fetchone() == (
        name.lower(),
        "señor\\ 🚀",
    )
    assert conn.execute("select email, user_id from raw.users").fetchall() == [(name.lower(), name)]


def test_cli_runs_as_a_module_and_console_script():
    import subprocess
    import sys

    for command in (
        [sys.executable, "-m", "loader", "--help"],
        [str(PROJECT_ROOT / ".venv" / "bin" / "jupyterhub-metrics"), "--help"],
    ):
        if not command[0].endswith("python") and not (PROJECT_ROOT / ".venv" / "bin" / "jupyterhub-metrics").exists():
            continue
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        assert "collect" in output and "db" in output


def test_unexpected_database_errors_are_one_line(migrated, database, monkeypatch):
    """Exports read the marts: a role that may not read them gets one line, not a traceback."""

    def refuse(*args, **kwargs):
        raise psycopg.errors.InsufficientPrivilege("permission denied for schema analytics")

    monkeypatch.setattr("loader.export.query_marts", refuse)
    result = run_cli(database, monkeypatch, "export", "usage")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: the database refused the command (permission denied for schema analytics); "
        "check the database and run again"
    )


def malformed_pods():
    """Pods the API server could serve that no KubeSpawner makes: each must cost only itself."""
    no_containers = pod(metadata__name="jupyter-no-containers")
    no_containers["spec"]["containers"] = []
    nameless_container = pod(metadata__name="jupyter-nameless")
    del nameless_container["spec"]["containers"][0]["name"]
    nameless_container["spec"]["containers"][0]["image"] = 42
    bad_time = pod(metadata__name="jupyter-bad-time", metadata__creationTimestamp="yesterday")
    nul_server = pod(
        metadata__name="jupyter-nul",
        metadata__annotations={"hub.jupyter.org/username": "nul@example.edu", "hub.jupyter.org/servername": "a\u0000b"},
    )
    return [no_containers, nameless_container, bad_time, nul_server]


def test_api_path_stores_good_pods_beside_malformed_ones_over_two_pages(
    migrated, database, conn, tmp_path, monkeypatch
):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr("loader.kubernetes_source.PAGE_SIZE", 3)
    good = [KUBESPAWNER_7_POD, pod(KUBESPAWNER_6_POD)]
    with KubeApiStub([good[0], *malformed_pods(), good[1]]) as stub:
        monkeypatch.setenv("KUBECONFIG", str(stub.write_kubeconfig(tmp_path / "kubeconfig")))
        result = run_cli(database, monkeypatch, "collect", "--email-domain", "example.edu")
    assert result.exit_code == 0, result.output
    assert [path for path, _ in stub.requests if path.startswith("/api/v1/pods")] == ["/api/v1/pods"] * 2  # two pages
    assert sorted(row[0] for row in conn.execute("select pod_name from raw.container_observations")) == sorted(
        p["metadata"]["name"] for p in good
    )
    assert conn.execute(
        "select status, pods_listed, rows_recorded, skip_reasons from raw.collector_runs"
    ).fetchall() == [("succeeded", 6, 2, {"malformed": 4})]


def test_unreadable_pod_list_leaves_a_failed_run_record_and_one_line(migrated, database, conn, tmp_path, monkeypatch):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    result = run_cli(database, monkeypatch, "collect", "--from-file", str(deep))
    assert result.exit_code == 1
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert conn.execute("select status, error is not null from raw.collector_runs").fetchall() == [("failed", True)]


@pytest.mark.parametrize(
    ("at", "accepted"),
    [
        ("1999-12-31T23:59:00+00:00", False),
        ("2100-01-01", False),
        ("0001-01-01", False),
        ("2026-11-02T10:00:00+00:00", True),
    ],
)
def test_at_outside_a_sane_window_is_refused_in_one_line(migrated, database, tmp_path, monkeypatch, at, accepted):
    path = write_pods(tmp_path, KUBESPAWNER_7_POD)
    result = run_cli(database, monkeypatch, "collect", "--from-file", str(path), "--at", at)
    assert (result.exit_code == 0) == accepted, result.output
    if not accepted:
        assert "--at" in result.output and len(result.output.strip().splitlines()) == 1


def test_unexpected_failure_is_one_line_with_a_run_record_and_debug_shows_the_traceback(
    migrated, database, conn, tmp_path, monkeypatch
):
    def explode(*args, **kwargs):
        raise ZeroDivisionError("a bug in a new code path")

    monkeypatch.setattr("loader.collect.build_rows", explode)
    path = write_pods(tmp_path, KUBESPAWNER_7_POD)
    result = run_cli(database, monkeypatch, "collect", "--from-file", str(path))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and "ZeroDivisionError" in result.output
    assert conn.execute("select status, error from raw.collector_runs").fetchall() == [
        (
            "failed",
            "collection failed unexpectedly (ZeroDivisionError: a bug in a new code path); "
            "run again with --debug for the traceback",
        )
    ]
    debug = run_cli(database, monkeypatch, "--debug", "collect", "--from-file", str(path))
    assert debug.exit_code == 1 and isinstance(debug.exception, LoaderError)


def two_container_metrics():
    """The notebook container and a sidecar, for each pod: only the notebook container is the user's use."""
    return [
        pod_metrics(KUBESPAWNER_7_POD, {"notebook": ("1532m", "2Gi"), "sidecar-proxy": ("900m", "1Gi")}),
        pod_metrics(KUBESPAWNER_6_POD, {"notebook": ("12500u", "300Mi"), "sidecar-proxy": ("2m", "20Mi")}),
    ]


def measured(conn):
    return dict(
        (row[0], (row[1], row[2]))
        for row in conn.execute(
            "select pod_name, cpu_usage_cores, memory_usage_bytes from raw.container_observations"
        ).fetchall()
    )


def test_measured_use_from_the_metrics_api_counts_the_notebook_container(
    migrated, database, conn, tmp_path, monkeypatch
):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with KubeApiStub([KUBESPAWNER_7_POD, KUBESPAWNER_6_POD]) as stub:
        stub.pod_metrics = two_container_metrics()
        monkeypatch.setenv("KUBECONFIG", str(stub.write_kubeconfig(tmp_path / "kubeconfig")))
        result = run_cli(database, monkeypatch, "collect", "--email-domain", "example.edu")
    assert result.exit_code == 0, result.output
    assert "/apis/metrics.k8s.io/v1beta1/pods" in [path for path, _ in stub.requests]
    assert measured(conn) == {
        "jupyter-jane-doe---2f1a9c3e--thesis": (Decimal("1.532"), 2 * 2**30),
        "jupyter-bob-2esmith": (Decimal("0.0125"), 300 * 2**20),
    }


def test_measured_use_from_a_file_for_replays(migrated, database, conn, tmp_path, monkeypatch):
    pods = write_pods(tmp_path, KUBESPAWNER_7_POD, KUBESPAWNER_6_POD)
    metrics = tmp_path / "metrics.json"
    metrics.write_text(
        json.dumps({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "items": two_container_metrics()})
    )
    result = run_cli(
        database,
        monkeypatch,
        "collect",
        "--from-file",
        str(pods),
        "--metrics-from-file",
        str(metrics),
        "--email-domain",
        "example.edu",
        "--at",
        AT,
    )
    assert result.exit_code == 0, result.output
    assert measured(conn)["jupyter-bob-2esmith"] == (Decimal("0.0125"), 300 * 2**20)


def test_a_cluster_without_the_metrics_api_gives_a_succeeded_run_with_null_use(
    migrated, database, conn, tmp_path, monkeypatch, caplog
):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with KubeApiStub([KUBESPAWNER_7_POD, KUBESPAWNER_6_POD]) as stub:  # pod_metrics None: 404
        monkeypatch.setenv("KUBECONFIG", str(stub.write_kubeconfig(tmp_path / "kubeconfig")))
        with caplog.at_level("WARNING"):
            result = run_cli(database, monkeypatch, "collect", "--email-domain", "example.edu")
    assert result.exit_code == 0, result.output
    assert set(measured(conn).values()) == {(None, None)}
    assert conn.execute("select status, rows_recorded from raw.collector_runs").fetchall() == [("succeeded", 2)]
    assert len([r for r in caplog.records if "no measured use" in r.getMessage()]) == 1


@pytest.mark.parametrize("content", ["{not: [valid yaml", "apiVersion: v1\nclusters: 7\n", "- just\n- a list\n"])
def test_a_malformed_kubeconfig_is_one_line_and_a_failed_run(migrated, database, conn, tmp_path, monkeypatch, content):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    (tmp_path / "kubeconfig").write_text(content)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    result = run_cli(database, monkeypatch, "collect")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and "KUBECONFIG" in result.output
    assert conn.execute("select status from raw.collector_runs").fetchall() == [("failed",)]

"""Two hubs in one cluster run the same user's pod under the same name: both are observed at every
collection and give two sessions, keyed by (cluster, namespace, user_email, pod_name, node_name)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from loader.cli import app
from tests.pod_factory import KUBESPAWNER_7_POD, pod, pod_list

pytestmark = pytest.mark.dbt

START = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def test_two_hubs_same_user_and_pod_name_give_two_sessions(database, tmp_path):
    staging = pod(metadata__namespace="jhub-staging", metadata__uid="staging-uid")
    (tmp_path / "pods.json").write_text(json.dumps(pod_list(KUBESPAWNER_7_POD, staging)))
    environment = {**database.environment(), "CLUSTER_NAME": "campus"}

    def run(*args):
        result = CliRunner().invoke(app, list(args), env=environment)
        assert result.exit_code == 0, result.output
        return result.output

    run("db", "migrate")
    for step in range(4):
        output = run(
            "collect",
            "--from-file",
            str(tmp_path / "pods.json"),
            "--at",
            (START + timedelta(minutes=5 * step)).isoformat(),
        )
        assert "2 rows recorded" in output
        if step == 1:
            run("build")  # an incremental build between collections
    run("build")
    with psycopg.connect(**database.connect_kwargs()) as conn:
        sessions = conn.execute(
            "select cluster, namespace, user_email, pod_name, node_name, observation_count, runtime_hours"
            " from analytics.user_sessions order by namespace"
        ).fetchall()
        nodes = conn.execute("select node_key, cluster, node_name from analytics.nodes").fetchall()
    assert sessions == [
        ("campus", "jhub", "jane.doe@example.edu", KUBESPAWNER_7_POD["metadata"]["name"], "gpu-a100-01", 4, 0.25),
        (
            "campus",
            "jhub-staging",
            "jane.doe@example.edu",
            KUBESPAWNER_7_POD["metadata"]["name"],
            "gpu-a100-01",
            4,
            0.25,
        ),
    ]
    assert nodes == [("campus/gpu-a100-01", "campus", "gpu-a100-01")]


def test_every_hourly_object_counts_both_hubs(database, tmp_path):
    """Three collections of two same-named pods in two namespaces: 2 namespaces and 6 observations in each hour,
    in the raw view and in the analytics table the dashboards read."""
    staging = pod(metadata__namespace="jhub-staging", metadata__uid="staging-uid")
    (tmp_path / "pods.json").write_text(json.dumps(pod_list(KUBESPAWNER_7_POD, staging)))
    environment = {**database.environment(), "CLUSTER_NAME": "campus"}
    runner = CliRunner()
    assert runner.invoke(app, ["db", "migrate"], env=environment).exit_code == 0
    for step in range(3):
        at = (START + timedelta(minutes=5 * step)).isoformat()
        result = runner.invoke(
            app, ["collect", "--from-file", str(tmp_path / "pods.json"), "--at", at], env=environment
        )
        assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["build"], env=environment).exit_code == 0
    with psycopg.connect(**database.connect_kwargs()) as conn:
        overflow = conn.execute("select count(*) from raw.container_observations_overflow").fetchone()[0]
        assert overflow == 3  # the second hub's pods
        for relation in ("raw.hourly_pod_usage", "analytics.hourly_pod_usage"):
            counted = conn.execute(
                f"select count(distinct namespace), sum(observations), sum(aged_observations) from {relation}"
            ).fetchone()
            assert counted == (2, 6, 6), relation
        assert conn.execute("select sum(observations) from raw.hourly_node_stats").fetchone()[0] == 6


def test_the_overflow_check_reads_only_the_collection_time(database):
    """Collect's check "does the main table hold this pod at this time?" names the collection's time as constants:
    on PostgreSQL an index look-up per pod, on TimescaleDB one chunk; never a scan of history."""
    from loader.migrate import migrate
    from loader.raw_store import CLAIMED_TABLE, claim_statement
    from tests.conftest import settings_for

    settings = settings_for(database)
    at = START + timedelta(days=60)
    with psycopg.connect(**database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        conn.execute(
            'insert into raw.container_observations ("timestamp", user_email, node_name, container_image,'
            " container_base, pod_name, cluster, namespace, collector_run_id)"
            " select %s - tick * interval '5 minutes', 'user' || n || '@x.edu', 'node', 'img', 'img',"
            " 'jupyter-user' || n, 'campus', 'jhub', 1"
            " from generate_series(1, 8000) as tick, generate_series(1, 20) as n",
            (at,),
        )
        conn.execute("analyze raw.container_observations")
        conn.execute("create temp table incoming_observations (like raw.container_observations_overflow)")
        conn.execute(
            'insert into incoming_observations ("timestamp", user_email, node_name, container_image, container_base,'
            " pod_name, cluster, namespace) values (%s, 'user1@x.edu', 'node', 'img', 'img', 'jupyter-user1', 'campus',"
            " 'jhub-staging')",
            (at,),
        )
        conn.execute(CLAIMED_TABLE)
        statement = claim_statement("raw", at, at)
        text = statement.as_string(conn)
        bound = f"'{at:%Y-%m-%d %H:%M:%S%z}'".replace("+0000", "+00:00") + "::timestamptz"
        assert f'main."timestamp" between {bound} and {bound}' in text
        plan = conn.execute("explain (format json) " + text).fetchone()[0]
        scans = []

        def walk(node):
            if node.get("Relation Name") == "container_observations":
                scans.append((node["Node Type"], node.get("Index Cond", "")))
            for child in node.get("Plans", []):
                walk(child)

        walk(plan[0]["Plan"])
        assert scans and all(kind.startswith("Index") and "timestamp" in cond for kind, cond in scans), scans
        conn.rollback()


def test_a_collection_whose_rows_all_went_to_the_main_table_runs_no_overflow_check(database):
    """The check reads the main table only for what a collection could not insert there (a replay, two hubs' pods
    of one name at one time): a collection of new rows, every one but these, costs its insert alone."""
    from loader.migrate import migrate
    from tests.conftest import settings_for
    from tests.dbt_helpers import load_batch, observation

    settings = settings_for(database)
    rows = [observation(f"user{n}@x.edu", f"jupyter-user{n}", "cpu-1", START) for n in range(3)]
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        load_batch(conn, settings, rows)
        assert conn.execute("select to_regclass('pg_temp.claimed_observations')").fetchone()[0] is None
        other_hub = [observation("user0@x.edu", "jupyter-user0", "cpu-1", START, cluster="other")]
        load_batch(conn, settings, [*rows, *other_hub])  # a replay, and another hub's pod of the same name
        assert conn.execute("select to_regclass('pg_temp.claimed_observations')").fetchone()[0] is not None
        assert conn.execute("select count(*) from raw.container_observations").fetchone()[0] == 3
        assert conn.execute("select count(*) from raw.container_observations_overflow").fetchone()[0] == 1
        runs = conn.execute("select rows_recorded, rows_already_recorded from raw.collector_runs order by id")
        assert runs.fetchall() == [(3, 0), (1, 3)]

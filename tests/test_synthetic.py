"""The demo's synthetic hub looks like a real one, and loads through the collector's own code path."""

from collections import Counter
from datetime import UTC, datetime

import psycopg

from loader.demo import load_synthetic_hub
from loader.migrate import migrate
from loader.synthetic import directory_entries, snapshots, synthetic_users
from tests.conftest import settings_for

END = datetime(2026, 11, 28, tzinfo=UTC)


def test_thirty_days_of_a_realistic_hub():
    hours, nodes, images, named, users = Counter(), set(), set(), set(), set()
    uids_per_pod_name: dict[str, set] = {}
    collections = 0
    for moment, document in snapshots(120, 30, 7, END):
        collections += 1
        for pod in document["items"]:
            if pod["status"]["phase"] != "Running":
                continue
            hours[moment.hour] += 1
            nodes.add(pod["spec"]["nodeName"])
            images.add(pod["spec"]["containers"][0]["image"])
            named.add(pod["metadata"]["annotations"]["hub.jupyter.org/servername"])
            users.add(pod["spec"]["containers"][0]["env"][0]["value"].split("/")[2])
            uids_per_pod_name.setdefault(pod["metadata"]["name"], set()).add(pod["metadata"]["uid"])
    assert collections == 30 * 288
    assert len(users) >= 100
    assert {"gpu", "cpu", "worker", "gke"} <= {node.split("-")[0] for node in nodes}  # generic names too
    assert len({image.split(":")[0] for image in images}) >= 5 and len(images) >= 8
    assert len(named - {""}) >= 2
    assert any(len(uids) > 1 for uids in uids_per_pod_name.values())  # restarts and later sessions: new uids
    busiest, quietest = max(hours.values()), min(hours.values())
    assert busiest > 4 * quietest  # a daily rhythm (flattened a little by GPU runs held over nights)


def test_synthetic_directory_has_fellowships_and_unknown_users():
    entries = directory_entries(synthetic_users(120, 7), 7)
    statuses = Counter(entry.status for entry in entries)
    assert statuses["found"] > 90 and statuses["not_found"] > 0
    assert any(entry.department == "Fellowships" and "," in entry.job_title for entry in entries if entry.job_title)


def test_demo_load_uses_the_collect_path_and_replays_add_nothing(database):
    settings = settings_for(database)
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        first = load_synthetic_hub(settings, days=2, users=25, seed=3, end=END)
        second = load_synthetic_hub(settings, days=2, users=25, seed=3, end=END)
        rows, runs = conn.execute(
            "select (select count(*) from raw.container_observations), (select count(*) from raw.collector_runs)"
        ).fetchone()
    assert first["collections"] == 576 and first["rows_recorded"] == rows > 0
    assert second["rows_recorded"] == 0 and second["rows_already_recorded"] == rows
    assert runs == 2 * 576
    with psycopg.connect(**database.connect_kwargs()) as conn:
        measured, idle, busy = conn.execute(
            "select count(cpu_usage_cores), count(*) filter (where cpu_usage_cores < 0.05),"
            " count(*) filter (where cpu_usage_cores > 0.3) from raw.container_observations"
        ).fetchone()
    assert measured == rows and idle > 0 and busy > 0  # metrics for every pod, idle and busy notebooks

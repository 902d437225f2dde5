"""What people keep (spec 3.8): KubeSpawner's PVCs from the Kubernetes API with kubelet's figures, and a shared home
volume's directories from prometheus-dirsize-exporter, both from a real Prometheus filled by promtool, over days in
which a server stops (its volume unmounted: no figures, the last ones stand). One row per volume and day; a directory
belongs to the user whose pods showed its name; what matches nobody is kept and listed; bad figures are counted."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta

import pytest
from typer.testing import CliRunner

from loader.cli import app
from loader.pods import UserSource
from loader.storage import (
    DIRECTORY_ENTRIES,
    DIRECTORY_LIMIT,
    DIRECTORY_MTIME,
    DIRECTORY_SIZE,
    VOLUME_CAPACITY,
    VOLUME_INODES,
    VOLUME_USED,
    Claim,
    claim_from_pvc,
    volume_figures,
)
from stand_ins import prometheus
from stand_ins.kubernetes import KubeApiStub
from tests.pod_factory import KUBESPAWNER_6_POD, KUBESPAWNER_7_POD

GIB = 2**30
DAY1 = datetime(2026, 11, 2, tzinfo=UTC)
COLLECTIONS = [DAY1 + timedelta(hours=10), DAY1 + timedelta(hours=22), DAY1 + timedelta(days=1, hours=12)]
DAY3 = DAY1 + timedelta(days=2, hours=9)
SOURCES = [UserSource("annotation", "hub.jupyter.org/username")]


def claim(name: str, *, username: str | None, escaped: str | None, capacity: object = "10Gi", server: str = "") -> dict:
    """A PVC as KubeSpawner 7 makes it (z2jh's dynamic storage)."""
    labels = {"app": "jupyterhub", "component": "singleuser-storage", "heritage": "jupyterhub"}
    annotations = {"hub.jupyter.org/servername": server}
    if escaped:
        labels["hub.jupyter.org/username"] = escaped
    if username:
        annotations["hub.jupyter.org/username"] = username
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "jhub", "labels": labels, "annotations": annotations},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": capacity}}},
        "status": {"phase": "Bound", "capacity": {"storage": capacity}},
    }


JANE_CLAIM = claim(
    "claim-jane-doe---2f1a9c3e--thesis", username="Jane.Doe@Example.edu", escaped="jane-doe---2f1a9c3e", server="thesis"
)


def test_a_kubespawner_claim_gives_its_owner_server_and_capacity():
    assert claim_from_pvc(JANE_CLAIM, user_sources=SOURCES, email_domain=None) == Claim(
        namespace="jhub",
        name="claim-jane-doe---2f1a9c3e--thesis",
        hub_username="Jane.Doe@Example.edu",
        escaped_name="jane-doe---2f1a9c3e",
        server_name="thesis",
        user_email="jane.doe@example.edu",
        capacity_bytes=10 * GIB,
    )


@pytest.mark.parametrize(
    ("pvc", "reason"),
    [
        (claim("claim-x", username=None, escaped=None), "storage_no_owner"),
        (claim("claim-x", username="x", escaped="x", capacity="lots"), "storage_malformed_claim"),
        ({"metadata": "nonsense"}, "storage_malformed_claim"),
    ],
)
def test_a_claim_without_an_owner_or_with_a_bad_capacity_is_skipped_with_its_reason(pvc, reason):
    assert claim_from_pvc(pvc, user_sources=SOURCES, email_domain=None).reason == reason


def answer(metric: str, value: str, **labels: str) -> dict:
    return {"status": "success", "data": {"resultType": "vector", "result": [{"metric": labels, "value": [0, value]}]}}


@pytest.mark.parametrize(
    ("metric", "value"),
    [(VOLUME_USED, "NaN"), (VOLUME_USED, "-1"), (VOLUME_USED, "+Inf"), (VOLUME_CAPACITY, "0"), (VOLUME_INODES, "x")],
)
def test_figures_a_volume_cannot_have_are_counted_and_left_out(metric, value):
    figures, skipped = volume_figures(
        {metric: answer(metric, value, namespace="jhub", persistentvolumeclaim="claim-a")}
    )
    assert figures == {} and sum(skipped.values()) == 1


def storage_series() -> str:
    """kubelet's figures of Jane's volume while her server runs on day 1 and day 3 (none on day 2: unmounted), of a
    hub database volume that is nobody's; the exporter's figures of Bob's home directory and of one nobody has."""

    def at(moments, values):
        return [(moment.timestamp(), str(value)) for moment, value in zip(moments, values, strict=True)]

    jane = {"namespace": "jhub", "persistentvolumeclaim": "claim-jane-doe---2f1a9c3e--thesis"}
    hub_db = {"namespace": "jhub", "persistentvolumeclaim": "hub-db-dir"}
    mounted = [COLLECTIONS[0], COLLECTIONS[1], DAY3]
    every = [*COLLECTIONS, DAY3]
    bob = {"namespace": "jhub", "directory": "bob-2esmith"}
    ghost = {"namespace": "jhub", "directory": "ghost-2dstudent"}
    mtime = (DAY1 - timedelta(days=400)).timestamp()
    return prometheus.openmetrics(
        [
            (VOLUME_USED, jane, at(mounted, [1 * GIB, 2 * GIB, 3 * GIB])),
            (VOLUME_CAPACITY, jane, at(mounted, [10 * GIB] * 3)),
            (VOLUME_INODES, jane, at(mounted, [100, 200, 300])),
            (VOLUME_USED, hub_db, at(mounted, [5 * GIB] * 3)),
            (DIRECTORY_SIZE, bob, at(every, [4 * GIB, 4 * GIB, 5 * GIB, 5 * GIB])),
            (DIRECTORY_ENTRIES, bob, at(every, [10, 10, 12, 12])),
            (DIRECTORY_LIMIT, bob, at(every, [50 * GIB] * 4)),
            (DIRECTORY_MTIME, bob, at(every, [mtime, mtime, mtime + 86400, mtime + 86400])),
            (DIRECTORY_SIZE, ghost, at(every, [GIB] * 4)),
            (DIRECTORY_MTIME, ghost, at(every, [mtime] * 4)),
        ]
    )


@pytest.fixture(scope="module")
def real_prometheus():
    if not prometheus.available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"no prometheus/promtool: {prometheus.INSTALL_HINT}")
        pytest.skip(prometheus.INSTALL_HINT)
    with prometheus.RealPrometheus(storage_series()) as server:
        yield server


def test_each_volume_and_home_directory_gets_a_row_per_day_as_the_series_say(
    real_prometheus, migrated, database, conn, tmp_path, monkeypatch, caplog
):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    orphan = claim("claim-orphan", username=None, escaped=None)
    with KubeApiStub([KUBESPAWNER_7_POD, KUBESPAWNER_6_POD]) as stub:
        stub.claims = [JANE_CLAIM, orphan]
        environment = {
            **database.environment(),
            "KUBECONFIG": str(stub.write_kubeconfig(tmp_path / "kubeconfig")),
            "PROMETHEUS_URL": real_prometheus.url,
            "COLLECT_EMAIL_DOMAIN": "example.edu",
        }

        def collect(moment: datetime, **changes: str):
            result = CliRunner().invoke(
                app, ["collect", "--json", "--at", moment.isoformat()], env={**environment, **changes}
            )
            assert result.exit_code == 0, result.output
            return json.loads(result.stdout.strip().splitlines()[-1])

        for moment in [*COLLECTIONS, DAY3]:
            document = collect(moment)
            assert document["skipped"].get("storage_no_owner") == 1
        # Within the hour storage is not read again (COLLECT_STORAGE_EVERY_MINUTES, 60); read anyway, the same
        # figures write nothing (within Prometheus's 5-minute lookback of the series' last samples).
        within_the_hour = collect(DAY3 + timedelta(minutes=2))
        again = collect(DAY3 + timedelta(minutes=4), COLLECT_STORAGE_EVERY_MINUTES="0")
        prometheus_down = collect(
            DAY3 + timedelta(hours=1), PROMETHEUS_URL=f"http://127.0.0.1:{prometheus.free_port()}"
        )

    assert within_the_hour["storage_volumes"] is None and within_the_hour["rows_recorded"] == 2
    assert again["storage_volumes"] == 3 and again["storage_rows_written"] == 0
    assert prometheus_down["rows_recorded"] == 2 and prometheus_down["storage_rows_written"] == 0
    assert "no storage figures in this run" in caplog.text
    assert "match no user" in caplog.text and "ghost-2dstudent" in caplog.text
    rows = conn.execute(
        "select day, layout, volume_name, user_email, server_name, used_bytes, largest_used_bytes, capacity_bytes,"
        " quota_bytes, file_count from raw.storage_observations order by layout, volume_name, day"
    ).fetchall()
    day = [date(2026, 11, 2) + timedelta(days=n) for n in range(3)]
    jane, bob = "jane.doe@example.edu", "bob.smith@example.edu"
    assert rows == [
        (day[0], "directory", "bob-2esmith", bob, None, 4 * GIB, 4 * GIB, None, 50 * GIB, 10),
        (day[1], "directory", "bob-2esmith", bob, None, 5 * GIB, 5 * GIB, None, 50 * GIB, 12),
        (day[2], "directory", "bob-2esmith", bob, None, 5 * GIB, 5 * GIB, None, 50 * GIB, 12),
        (day[0], "directory", "ghost-2dstudent", None, None, GIB, GIB, None, None, None),
        (day[1], "directory", "ghost-2dstudent", None, None, GIB, GIB, None, None, None),
        (day[2], "directory", "ghost-2dstudent", None, None, GIB, GIB, None, None, None),
        # Day 2: the server stopped, kubelet reported nothing; the PVC's capacity is all that day knows.
        (day[0], "volume", JANE_CLAIM["metadata"]["name"], jane, "thesis", 2 * GIB, 2 * GIB, 10 * GIB, None, 200),
        (day[1], "volume", JANE_CLAIM["metadata"]["name"], jane, "thesis", None, None, 10 * GIB, None, None),
        (day[2], "volume", JANE_CLAIM["metadata"]["name"], jane, "thesis", 3 * GIB, 3 * GIB, 10 * GIB, None, 300),
    ]
    last_modified = conn.execute(
        "select last_modified_at from raw.storage_observations where volume_name = 'bob-2esmith' order by day"
    ).fetchall()
    first = DAY1 - timedelta(days=400)
    assert [moment for (moment,) in last_modified] == [first, first + timedelta(days=1), first + timedelta(days=1)]
    pods_skipped = conn.execute("select max(pods_skipped) from raw.collector_runs").fetchone()[0]
    assert pods_skipped == 0  # a volume is not a pod

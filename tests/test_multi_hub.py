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

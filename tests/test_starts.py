"""Starting a server (spec 3.6): start-up moments of running pods, the pods that are not running and why, through the
boundary check; then collections of those shapes through dbt into start-up times and failed starts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from loader.cli import app
from loader.pods import PendingPod, Skip, UserSource, observation_from_pod, pending_from_pod
from tests.dbt_helpers import dbt
from tests.pod_factory import not_running_pod, pod_list, running_pod_with_conditions

OBSERVED = datetime(2026, 11, 2, 10, 5, tzinfo=UTC)
SOURCES = [UserSource("annotation", "hub.jupyter.org/username")]


def pending(document: dict) -> PendingPod | Skip:
    return pending_from_pod(document, observed_at=OBSERVED, user_sources=SOURCES, cluster="test")


@pytest.mark.parametrize(
    ("shape", "phase", "reason", "node"),
    [
        ("Unschedulable", "Pending", "Unschedulable", None),
        ("ErrImagePull", "Pending", "ErrImagePull", "gpu-a100-01"),
        ("ImagePullBackOff", "Pending", "ImagePullBackOff", "gpu-a100-01"),
        ("ContainerCreating", "Pending", "ContainerCreating", "gpu-a100-01"),
        ("CrashLoopBackOff", "Pending", "CrashLoopBackOff", "gpu-a100-01"),  # the init container's, not PodInitializing
        ("Evicted", "Failed", "Evicted", "gpu-a100-01"),
        ("OOMKilled", "Failed", "OOMKilled", "gpu-a100-01"),
    ],
)
def test_each_documented_state_gives_its_phase_and_reason(shape, phase, reason, node):
    row = pending(not_running_pod(shape))
    assert isinstance(row, PendingPod), row
    assert (row.phase, row.reason, row.node_name) == (phase, reason, node)
    assert row.user_email == "jane.doe@example.edu" and row.age_seconds == 300
    assert row.container_image == "registry.example.edu:5000/rcs/pytorch-notebook:2.5-cuda12"


def test_an_init_container_that_finished_leaves_the_notebooks_own_reason():
    document = not_running_pod("ImagePullBackOff")
    document["status"]["initContainerStatuses"] = [
        {"name": "block-cloud-metadata", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    ]
    assert pending(document).reason == "ImagePullBackOff"


def test_a_pod_pending_without_any_status_yet_has_no_reason():
    document = not_running_pod("ContainerCreating")
    document["status"] = {"phase": "Pending"}
    row = pending(document)
    assert isinstance(row, PendingPod) and row.reason is None


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (lambda d: d["status"]["containerStatuses"][0]["state"]["waiting"].update(reason="x" * 500), "characters long"),
        (lambda d: d["status"]["containerStatuses"][0]["state"]["waiting"].update(reason=7), "expected text"),
        (lambda d: d["status"]["containerStatuses"][0]["state"]["waiting"].update(reason="a\x00b"), "NUL"),
        (lambda d: d["status"].update(conditions="Ready"), "status.conditions"),
        (lambda d: d["status"].update(containerStatuses=[["notebook"]]), "containerStatuses"),
        (lambda d: d["metadata"].update(creationTimestamp="2126-01-01T00:00:00Z"), "creationTimestamp"),
        (lambda d: d["metadata"].update(creationTimestamp="yesterday"), "creationTimestamp"),
        (lambda d: d["metadata"].update(name=None), "metadata.name"),
    ],
)
def test_hostile_values_skip_the_pod_with_a_reason_never_raise(change, detail):
    document = not_running_pod("ErrImagePull")
    change(document)
    outcome = pending(document)
    assert isinstance(outcome, Skip) and outcome.reason == "malformed" and detail in outcome.detail


def test_a_pending_pod_without_an_identity_is_skipped_as_such():
    document = not_running_pod("Unschedulable")
    document["metadata"]["annotations"] = {}
    outcome = pending(document)
    assert isinstance(outcome, Skip) and outcome.reason == "no_identity"


def test_a_running_pod_carries_its_creation_scheduling_and_readiness():
    document = running_pod_with_conditions(
        "jupyter-jane", "uid-1", "2026-11-02T10:00:00Z", "2026-11-02T10:00:04Z", "2026-11-02T10:01:31Z"
    )
    row = observation_from_pod(document, observed_at=OBSERVED, user_sources=SOURCES)
    assert not isinstance(row, Skip), row
    assert row.pod_created_at == datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    assert row.scheduled_at == datetime(2026, 11, 2, 10, 0, 4, tzinfo=UTC)
    assert row.ready_at == datetime(2026, 11, 2, 10, 1, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ready", "detail"),
    [("2126-11-02T10:01:31Z", "outside"), ("soon", "lastTransitionTime"), (1700000000, "lastTransitionTime")],
)
def test_a_readiness_time_that_cannot_be_is_caught_at_the_boundary(ready, detail):
    document = running_pod_with_conditions(
        "jupyter-jane", "uid-1", "2026-11-02T10:00:00Z", "2026-11-02T10:00:04Z", "2026-11-02T10:01:31Z"
    )
    document["status"]["conditions"][1]["lastTransitionTime"] = ready
    outcome = observation_from_pod(document, observed_at=OBSERVED, user_sources=SOURCES)
    assert isinstance(outcome, Skip) and detail in outcome.detail


def test_a_ready_condition_that_is_false_gives_no_readiness():
    document = running_pod_with_conditions(
        "jupyter-jane", "uid-1", "2026-11-02T10:00:00Z", "2026-11-02T10:00:04Z", "2026-11-02T10:01:31Z"
    )
    document["status"]["conditions"][1]["status"] = "False"
    row = observation_from_pod(document, observed_at=OBSERVED, user_sources=SOURCES)
    assert not isinstance(row, Skip) and row.ready_at is None and row.scheduled_at is not None


# End to end: collections of these shapes, then dbt.

START = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def _collect(database, documents: list[dict], at: datetime, tmp_path) -> dict:
    path = tmp_path / f"pods-{at:%H%M}.json"
    path.write_text(json.dumps(pod_list(*documents)))
    result = CliRunner().invoke(
        app, ["collect", "--from-file", str(path), "--at", at.isoformat(), "--json"], env=database.environment()
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.dbt
def test_starts_that_succeed_have_their_times_and_those_that_fail_their_reason(migrated, database, tmp_path):
    jane_uid = "11111111-1111-4111-8111-111111111111"
    # Jane waits 4 s for a node and 87 s for her image, then runs: one start, measured, not failed.
    jane_waiting = not_running_pod("ContainerCreating", name="jupyter-jane", uid=jane_uid)
    jane_running = running_pod_with_conditions(
        "jupyter-jane", jane_uid, "2026-11-02T10:00:00Z", "2026-11-02T10:00:04Z", "2026-11-02T10:01:31Z"
    )
    # Bob's image cannot be pulled for three collections, then his pod is gone: a failed start.
    bob = not_running_pod("ImagePullBackOff", name="jupyter-bob", uid="22222222-2222-4222-8222-222222222222")
    bob["metadata"]["annotations"]["hub.jupyter.org/username"] = "bob@example.edu"
    # Carol's GPU pod is never scheduled and is still waiting at the last collection: waiting now, not failed yet.
    carol = not_running_pod("Unschedulable", name="jupyter-carol", uid="33333333-3333-4333-8333-333333333333")
    carol["metadata"]["annotations"]["hub.jupyter.org/username"] = "carol@example.edu"
    # Dan's pod is evicted: failed at once.
    dan = not_running_pod("Evicted", name="jupyter-dan", uid="44444444-4444-4444-8444-444444444444")
    dan["metadata"]["annotations"]["hub.jupyter.org/username"] = "dan@example.edu"

    first = _collect(database, [jane_waiting, bob, carol], START + timedelta(seconds=30), tmp_path)
    assert (first["pods_listed"], first["pending_pods"]) == (0, 3)
    _collect(database, [jane_running, bob, carol], START + timedelta(minutes=5), tmp_path)
    _collect(database, [jane_running, bob, carol, dan], START + timedelta(minutes=10), tmp_path)
    last = _collect(database, [jane_running, carol], START + timedelta(minutes=15), tmp_path)
    assert (last["pods_listed"], last["pending_pods"]) == (1, 1)

    dbt(migrated, "build")
    with psycopg.connect(**database.connect_kwargs()) as conn:
        jane = conn.execute(
            "select startup_seconds, scheduling_seconds, start_seconds from analytics.user_sessions"
        ).fetchall()
        failed = conn.execute(
            "select user_email, reason, observations from analytics.failed_starts order by user_email"
        ).fetchall()
        waiting = conn.execute("select user_email, reason, node_name from analytics.pending_now").fetchall()
        times = conn.execute(
            "select measured_starts, p50_startup_seconds, p50_scheduling_seconds, p50_start_seconds "
            "from analytics.startup_times"
        ).fetchall()
    assert jane == [(91, 4, 87)]
    assert failed == [("bob@example.edu", "ImagePullBackOff", 3), ("dan@example.edu", "Evicted", 1)]
    assert waiting == [("carol@example.edu", "Unschedulable", None)]
    assert times == [(1, 91, 4, 87)]

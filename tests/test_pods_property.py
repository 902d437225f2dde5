"""Property: whatever shape a pod takes, among good pods, a collection stores exactly the valid pods, counts
the rest, and never raises (hypothesis mutates real KubeSpawner pod shapes)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loader.collect import build_rows
from loader.config import CollectSettings
from loader.pods import Observation, observation_from_pod
from loader.raw_store import OBSERVATION_COLUMNS
from tests.pod_factory import KUBESPAWNER_6_POD, KUBESPAWNER_7_POD

AT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
SETTINGS = CollectSettings(email_domain="example.edu")

# Where a pod can go wrong: each path into a real KubeSpawner pod.
PATHS = [
    ("metadata",),
    ("metadata", "name"),
    ("metadata", "namespace"),
    ("metadata", "uid"),
    ("metadata", "creationTimestamp"),
    ("metadata", "labels"),
    ("metadata", "annotations"),
    ("metadata", "annotations", "hub.jupyter.org/username"),
    ("metadata", "annotations", "hub.jupyter.org/servername"),
    ("spec",),
    ("spec", "nodeName"),
    ("spec", "containers"),
    ("spec", "containers", 0),
    ("spec", "containers", 0, "name"),
    ("spec", "containers", 0, "image"),
    ("spec", "containers", 0, "env"),
    ("spec", "containers", 0, "resources"),
    ("spec", "containers", 0, "resources", "requests"),
    ("spec", "containers", 0, "resources", "requests", "cpu"),
    ("spec", "containers", 0, "resources", "requests", "memory"),
    ("spec", "containers", 0, "resources", "limits", "nvidia.com/gpu"),
    ("status",),
    ("status", "startTime"),
]
HOSTILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "a\u0000b",
            "\ud800",
            "x" * 100_000,
            "99999999999",
            "9Ei",
            "-4",
            "NaN",
            "Infinity",
            "-500m",
            "100u",
            "1k",
            "1900-01-01T00:00:00Z",
            "",
            " ",
        ]
    ),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)


def mutate(document, path, value):
    target = document
    for step in path[:-1]:
        if isinstance(target, dict) and isinstance(step, str):
            target = target.setdefault(step, {})
        elif isinstance(target, list) and isinstance(step, int) and step < len(target):
            target = target[step]
        else:
            return document
    last = path[-1]
    if (
        isinstance(target, dict)
        and isinstance(last, str)
        or isinstance(target, list)
        and isinstance(last, int)
        and last < len(target)
    ):
        target[last] = value
    return document


def storable(row: Observation) -> bool:
    """What PostgreSQL would accept: the independent check of what was stored."""
    for name in OBSERVATION_COLUMNS:
        value = getattr(row, name)
        if isinstance(value, str) and ("\x00" in value or len(value) > 2000):
            return False
    return (
        (row.gpu_count is None or 0 <= row.gpu_count <= 1024)
        and (row.memory_request_bytes is None or 0 <= row.memory_request_bytes < 2**63)
        and (row.cpu_request is None or row.cpu_request.is_finite() and row.cpu_request >= 0)
        and 0 <= row.age_seconds < 2**31
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mutations=st.lists(st.tuples(st.sampled_from(PATHS), HOSTILE_VALUES), min_size=1, max_size=3),
    whole=st.one_of(st.none(), HOSTILE_VALUES),
    position=st.integers(min_value=0, max_value=2),
)
def test_a_hostile_pod_among_good_ones_costs_only_itself(mutations, whole, position):
    good = [copy.deepcopy(KUBESPAWNER_7_POD), copy.deepcopy(KUBESPAWNER_6_POD)]
    hostile = copy.deepcopy(KUBESPAWNER_7_POD)
    hostile["metadata"]["name"] = "jupyter-hostile"
    for path, value in mutations:
        hostile = mutate(hostile, path, value)
    if whole is not None:
        hostile = whole
    pods = good[:position] + [hostile] + good[position:]
    rows, skipped = build_rows(pods, SETTINGS, AT)
    good_names = {"jupyter-jane-doe---2f1a9c3e--thesis", "jupyter-bob-2esmith"}
    assert good_names <= {row.pod_name for row in rows}
    assert len(rows) + sum(skipped.values()) == len(pods)
    for row in rows:
        assert storable(row)
        json.dumps([str(getattr(row, name)) for name in OBSERVATION_COLUMNS])  # printable, encodable


def test_hostile_values_named_in_the_reason():
    hostile = copy.deepcopy(KUBESPAWNER_7_POD)
    hostile["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "-4"
    skip = observation_from_pod(hostile, observed_at=AT, user_sources=[])
    assert skip.reason in ("malformed", "no_identity")
    from loader.pods import UserSource

    skip = observation_from_pod(
        hostile, observed_at=AT, user_sources=[UserSource.parse("annotation:hub.jupyter.org/username")]
    )
    assert skip.reason == "malformed" and "nvidia.com/gpu" in skip.detail


@pytest.fixture(scope="module")
def migrated_module(module_database):
    from dataclasses import replace

    import psycopg

    from loader.migrate import migrate
    from tests.conftest import settings_for

    settings_ = settings_for(module_database)
    settings_ = replace(settings_, collect=replace(settings_.collect, email_domain="example.edu"))
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
        migrate(conn, settings_.raw_schema, settings_.bootstrap_sql_dir)
    return settings_, module_database


_runs = iter(range(10**6))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(mutations=st.lists(st.tuples(st.sampled_from(PATHS), HOSTILE_VALUES), min_size=1, max_size=3))
def test_hostile_pods_through_a_real_collection(migrated_module, mutations):
    """The same through collect and PostgreSQL: every run succeeds, stores exactly the pods it accepted."""
    import psycopg

    from loader.collect import collect_into

    settings_, database = migrated_module
    hostile = copy.deepcopy(KUBESPAWNER_7_POD)
    hostile["metadata"]["name"] = "jupyter-hostile"
    for path, value in mutations:
        hostile = mutate(hostile, path, value)
    pods = [copy.deepcopy(KUBESPAWNER_7_POD), hostile, copy.deepcopy(KUBESPAWNER_6_POD)]
    at = datetime.fromtimestamp(AT.timestamp() + 300 * next(_runs), tz=UTC)
    with psycopg.connect(**database.connect_kwargs()) as conn:
        result = collect_into(conn, settings_, lambda: pods, observed_at=at)
        stored = conn.execute(
            'select count(*) from raw.container_observations where "timestamp" = %s', (at,)
        ).fetchone()[0]
        stored += conn.execute(
            'select count(*) from raw.container_observations_overflow where "timestamp" = %s', (at,)
        ).fetchone()[0]
    assert result.rows_recorded == stored >= 2
    assert result.rows_recorded + sum(result.skip_reasons.values()) == 3

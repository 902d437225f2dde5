"""Property: incremental `user_sessions`, built after each of several out-of-order batches, equals one
full rebuild, and equals the predecessor's session SQL (compat/predecessor_views.sql) on the same data.

Scenarios are independent users, so many of them share one database and one series of dbt runs.
"""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

from loader.migrate import migrate
from loader.raw_store import OBSERVATION_COLUMNS
from tests.conftest import settings_for
from tests.dbt_helpers import copy_without_run_id, dbt, load_batch, observation
from tests.predecessor import PREDECESSOR_VIEWS_SQL

pytestmark = pytest.mark.dbt

GAP = timedelta(minutes=60)
# Steps between observations, weighted towards the threshold where mistakes happen.
STEPS = [
    timedelta(minutes=5),
    timedelta(minutes=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    GAP - timedelta(seconds=1),
    GAP,
    GAP,
    GAP + timedelta(seconds=1),
    GAP + timedelta(seconds=1),
    timedelta(minutes=61),
    timedelta(hours=3),
    timedelta(days=2),
]
SESSION_COLUMNS = (
    "session_id, user_email, pod_name, node_name, session_start, session_end, observation_count,"
    " container_base, container_version, pod_uid, gpu_count, node_type, last_collector_run_id,"
    " round(runtime_hours::numeric, 9), round(gpu_hours::numeric, 9), round(cpu_hours::numeric, 9),"
    " measured_observation_count, cpu_usage_cores_sum, avg_cpu_usage_cores, max_memory_usage_bytes,"
    " last_cpu_usage_cores, idle_seconds, round(idle_hours::numeric, 9), cpu_request_cores"
)
# Measured CPU use: unknown, idle (below the 0.05-core threshold) or busy.
USES = [None, Decimal("0.01"), Decimal("0.02"), Decimal("0.049"), Decimal("0.05"), Decimal("1.5")]


def scenario(rng: random.Random, index: int, start: datetime) -> tuple[list, bool]:
    """One user's observation stream over a few pods and nodes; True when it has pod uid changes."""
    user = f"user{index}@example.edu"
    uid_changes = rng.random() < 0.5
    observations = []
    for pod_number in range(rng.randint(1, 3)):
        pod = f"jupyter-user{index}" + (f"--srv{pod_number}" if pod_number else "")
        moment = start + timedelta(seconds=rng.randint(0, 7200))
        node = rng.choice(["cpu-1", "cpu-2", "gpu-a100-1"])
        uid = f"uid-{index}-{pod_number}-0" if uid_changes or rng.random() < 0.5 else None
        for step_number in range(rng.randint(1, 30)):
            if rng.random() < 0.08:
                node = rng.choice(["cpu-1", "cpu-2", "gpu-a100-1"])
            if uid_changes and rng.random() < 0.1:
                uid = f"uid-{index}-{pod_number}-{step_number}"
            observations.append(
                observation(
                    user,
                    pod,
                    node,
                    moment,
                    pod_uid=uid,
                    container_base=rng.choice(["scipy", "torch", "r"]),
                    container_version=rng.choice(["1", "2"]),
                    gpu_count=rng.choice([0, 1, 2, None]),
                    cpu_usage_cores=rng.choice(USES),
                    memory_usage_bytes=rng.choice([None, 2**30, 3 * 2**30]),
                )
            )
            moment += rng.choice(STEPS) + timedelta(seconds=rng.choice([0, 0, 0, 17]))
    return observations, uid_changes


def per_user_and_node(conn, schema: str = "analytics") -> tuple[set[tuple], set[tuple]]:
    users = conn.execute(
        "select user_email, round(total_hours::numeric, 9), round(gpu_hours::numeric, 9), round(cpu_hours::numeric, 9),"
        " round(gpu_device_hours::numeric, 9), total_sessions, applications_used, first_session, last_session,"
        " round(idle_gpu_hours::numeric, 9), round(cpu_efficiency, 12),"
        f" favorite_container, last_collector_run_id from {schema}.user_session_stats"
    ).fetchall()
    nodes = conn.execute(f"select * from {schema}.nodes").fetchall()
    return set(users), set(nodes)


def concurrent_external_write_and_loader_run(database, settings, external, loaded) -> None:
    """An external writer's transaction is open when a loader run starts: the loader waits for it,
    so run ids still become visible in order and no build can skip either."""
    with (
        psycopg.connect(**database.connect_kwargs()) as writer,
        psycopg.connect(autocommit=True, **database.connect_kwargs()) as loader,
    ):
        writer_transaction = writer.transaction()
        writer_transaction.__enter__()
        columns = sql.SQL(", ").join(map(sql.Identifier, OBSERVATION_COLUMNS))
        with writer.cursor().copy(sql.SQL("copy raw.container_observations ({}) from stdin").format(columns)) as copy:
            for row in external:
                copy.write_row([getattr(row, name) for name in OBSERVATION_COLUMNS])
        worker = threading.Thread(target=load_batch, args=(loader, settings, loaded))
        worker.start()
        worker.join(timeout=1.0)
        assert worker.is_alive(), "the loader must wait for the open external transaction"
        writer_transaction.__exit__(None, None, None)
        worker.join(timeout=30)
        assert not worker.is_alive()
        external_run, loader_run = writer.execute(
            "select max(id) filter (where kind = 'external'), max(id) filter (where kind = 'collect')"
            " from raw.collector_runs"
        ).fetchone()
        assert external_run < loader_run


def sessions(conn, where: str = "true", schema: str = "analytics") -> set[tuple]:
    rows = set(conn.execute(f"select {SESSION_COLUMNS} from {schema}.user_sessions where {where}").fetchall())
    days = conn.execute(
        f"select session_id, day, round(hours::numeric, 9), round(coalesce(idle_gpu_hours, -1)::numeric, 9),"
        f" cpu_core_hours is null from {schema}.session_days"
    ).fetchall()
    return rows | {("day", *row) for row in days}


@pytest.mark.parametrize("seed", [11, 2026])
def test_incremental_sessions_equal_full_rebuild_and_predecessor(database, conn, seed):
    rng = random.Random(seed)
    settings = settings_for(database)
    conn.autocommit = True  # no open transaction of ours may block dbt's DDL
    migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)

    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    streams = [scenario(rng, index, start) for index in range(45)]
    everything = [obs for stream, _ in streams for obs in stream]
    batch_count = 6
    batches = [[] for _ in range(batch_count)]
    for obs in everything:  # random batches: every batch holds observations from anywhere in time
        batches[rng.randrange(batch_count)].append(obs)

    incremental_marts = ["user_sessions", "user_session_stats", "nodes", "session_days"]
    dbt(settings, "run", "--select", "+user_sessions", *incremental_marts)  # first build: empty tables
    for number, batch in enumerate(batches):
        # Some observations arrive through other writers, with no run id: the predecessor's collector
        # during a migration, a psql backfill; late and out of order like the rest.
        external = [obs for obs in batch if rng.random() < 0.3]
        loaded = [obs for obs in batch if obs not in external]
        if number == 2:
            concurrent_external_write_and_loader_run(database, settings, external, loaded)
        else:
            copy_without_run_id(conn, settings, external)
            load_batch(conn, settings, loaded)
        dbt(settings, "run", "--select", *incremental_marts)
    incremental = sessions(conn)
    incremental_stats = per_user_and_node(conn)

    dbt(settings, "run", "--select", *incremental_marts, "--full-refresh")
    rebuilt = sessions(conn)
    assert len(rebuilt) > 150
    assert incremental == rebuilt
    assert incremental_stats == per_user_and_node(conn)

    # The predecessor's definition, on the same rows, for streams whose pods never change uid.
    with conn.transaction():
        conn.execute("create schema predecessor")
        conn.execute("set local search_path to predecessor, raw")  # its views over our raw table
        conn.execute(PREDECESSOR_VIEWS_SQL.encode())
    without_uid_changes = [f"'user{index}@example.edu'" for index, (_, changes) in enumerate(streams) if not changes]
    assert len(without_uid_changes) > 10
    users = ", ".join(without_uid_changes)
    ours = set(
        conn.execute(
            "select user_email, pod_name, node_name, session_start, session_end, round(runtime_hours::numeric, 9),"
            f" container_base, container_version from analytics.user_sessions where user_email in ({users})"
        ).fetchall()
    )
    theirs = set(
        conn.execute(
            "select user_email, pod_name, node_name, session_start, session_end, round(runtime_hours, 9),"
            f" container_base, container_version from predecessor.user_sessions where user_email in ({users})"
        ).fetchall()
    )
    assert ours == theirs
    # And where uids do change, sessions only ever split further: every one lies inside a predecessor session.
    nested = conn.execute(
        "select count(*) from analytics.user_sessions s where not exists (select from predecessor.user_sessions p"
        " where p.user_email = s.user_email and p.pod_name = s.pod_name and p.node_name = s.node_name"
        " and s.session_start >= p.session_start and s.session_end <= p.session_end)"
    ).fetchone()[0]
    assert nested == 0


def steady_stream(rng: random.Random, index: int, start: datetime) -> list:
    """A user whose pods run for hours to days, collected every 5 minutes, now and then changing image,
    node or pod uid, with pauses that sometimes exceed the gap."""
    user = f"steady{index}@example.edu"
    observations = []
    for pod_number in range(rng.randint(1, 2)):
        pod = f"jupyter-steady{index}" + (f"--srv{pod_number}" if pod_number else "")
        moment = start + timedelta(minutes=5 * rng.randint(0, 24))
        node, image = rng.choice(["cpu-1", "gpu-a100-1"]), rng.choice(["scipy", "torch"])
        uid = f"uid-{index}-{pod_number}" if rng.random() < 0.7 else None  # None: rows from before adoption
        for step_number in range(rng.randint(20, 400)):
            if rng.random() < 0.004:
                image = rng.choice(["scipy", "torch", "r"])
            if uid and rng.random() < 0.003:
                uid = f"uid-{index}-{pod_number}-{step_number}"
            if rng.random() < 0.003:
                node = rng.choice(["cpu-1", "gpu-a100-1"])
            observations.append(
                observation(
                    user,
                    pod,
                    node,
                    moment,
                    pod_uid=uid if rng.random() < 0.95 else None,
                    cpu_usage_cores=rng.choice(USES),
                    container_base=image,
                    gpu_count=rng.choice([1, 1, 1, 2]),
                )
            )
            moment += rng.choice([timedelta(minutes=5)] * 200 + [GAP, GAP + timedelta(seconds=1), timedelta(hours=2)])
    return observations


@pytest.mark.parametrize("seed", [5, 77])
def test_sessions_extended_cycle_by_cycle_then_merged_by_late_rows_equal_full_rebuild(database, conn, seed):
    """Collections in time order (the common case: open sessions extended from their stored rows), with a
    few observations held back and delivered late, some by other writers: equal to one full rebuild."""
    rng = random.Random(seed)
    settings = settings_for(database)
    conn.autocommit = True
    migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    everything = sorted(
        (obs for index in range(30) for obs in steady_stream(rng, index, start)), key=lambda obs: obs.timestamp
    )
    late = [obs for obs in everything if rng.random() < 0.03]
    on_time = [obs for obs in everything if obs not in late]
    incremental_marts = ["user_sessions", "user_session_stats", "nodes", "session_days"]
    dbt(settings, "run", "--select", "+user_sessions", *incremental_marts)
    cycles = 14
    for number in range(cycles):
        batch = on_time[number * len(on_time) // cycles : (number + 1) * len(on_time) // cycles]
        load_batch(conn, settings, batch)
        dbt(settings, "run", "--select", *incremental_marts)
    long_sessions = conn.execute(
        "select count(*) from analytics.user_sessions where observation_count >= 100"
    ).fetchone()[0]
    assert long_sessions >= 5, "sessions must be extended over many cycles"
    # Before late rows repair anything: equal to a full build of the same rows (in a schema of its own).
    reference = replace(settings, analytics_schema="reference")
    dbt(reference, "run", "--select", "+user_sessions", *incremental_marts, "--full-refresh")
    assert sessions(conn) == sessions(conn, schema="reference")
    assert per_user_and_node(conn) == per_user_and_node(conn, schema="reference")
    rng.shuffle(late)
    copy_without_run_id(conn, settings, late[: len(late) // 2])
    dbt(settings, "run", "--select", *incremental_marts)
    load_batch(conn, settings, late[len(late) // 2 :])
    dbt(settings, "run", "--select", *incremental_marts)
    incremental, incremental_stats = sessions(conn), per_user_and_node(conn)

    dbt(settings, "run", "--select", *incremental_marts, "--full-refresh")
    assert sessions(conn) == incremental
    assert per_user_and_node(conn) == incremental_stats

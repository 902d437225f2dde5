"""Past one node (spec 3.2): on a real Citus coordinator with two workers (from the engines kit), migrate distributes
the raw tables by the user, co-located, with collector_runs a reference table; a second migrate changes nothing; a
collection writes and counts its rows (a replay counts them as already recorded, another hub's pod of the same name
goes to the overflow table) and other writers' rows get a run of their own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from loader.graph_source import DirectoryEntry
from loader.hub_source import HubServer, HubSnapshot
from loader.migrate import migrate
from loader.raw_store import emails_to_look_up, write_directory_entries
from tests.conftest import settings_for
from tests.dbt_helpers import copy_without_run_id, dbt, load_batch, observation


@pytest.fixture(scope="module")
def engine() -> str:
    return "citus"


REFERENCE = ["collector_runs", "storage_observations", "hub_names_seen"]
DISTRIBUTED = {
    "container_observations": "user_email",
    "container_observations_overflow": "user_email",
    "users": "email",
    "pending_pods": "user_email",
    "hub_servers": "user_name",
    "hub_group_members": "user_name",
}


def citus_tables(conn: psycopg.Connection, schema: str = "raw") -> dict[str, tuple[str, str, int]]:
    """The schema's Citus tables by name: (kind, distribution column, co-location group)."""
    return {
        name.split(".")[-1]: (kind, column, colocation)
        for name, kind, column, colocation in conn.execute(
            "select table_name::text, citus_table_type, distribution_column, colocation_id from citus_tables"
            " where table_name::text like %s",
            (f"{schema}.%",),
        ).fetchall()
    }


def test_migrate_distributes_the_raw_tables_by_user_co_located_and_twice_changes_nothing(database, conn):
    settings = settings_for(database)
    conn.autocommit = True
    migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
    tables = citus_tables(conn)
    assert {name: tables[name][:2] for name in REFERENCE} == {name: ("reference", "<none>") for name in REFERENCE}
    assert {name: tables[name][:2] for name in DISTRIBUTED} == {
        name: ("distributed", column) for name, column in DISTRIBUTED.items()
    }
    assert len({tables[name][2] for name in DISTRIBUTED}) == 1  # one co-location group
    assert migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir) == []
    assert citus_tables(conn) == tables


def test_a_collection_writes_and_counts_its_rows_on_the_workers(database, conn):
    settings = settings_for(database)
    conn.autocommit = True
    migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    rows = [
        observation(f"user{n}@x.edu", f"jupyter-user{n}", "cpu-1", at + timedelta(minutes=5 * tick))
        for n in range(6)
        for tick in range(4)
    ]
    load_batch(conn, settings, rows)
    load_batch(conn, settings, rows[:5])  # a replay
    other_hub = [observation("user0@x.edu", "jupyter-user0", "cpu-1", at, cluster="other", namespace="jhub")]
    load_batch(conn, settings, other_hub)
    copy_without_run_id(conn, settings, [observation("late@x.edu", "jupyter-late", "cpu-1", at)])
    runs = conn.execute(
        "select kind, rows_recorded, rows_already_recorded from raw.collector_runs order by id"
    ).fetchall()
    assert runs == [("collect", 24, 0), ("collect", 0, 5), ("collect", 1, 0), ("external", 0, 0)]
    assert conn.execute("select count(*) from raw.container_observations").fetchone()[0] == 25
    assert conn.execute("select count(*) from raw.container_observations_overflow").fetchone()[0] == 1
    assert (
        conn.execute(
            "select count(*) from raw.container_observations as o join raw.collector_runs as r"
            " on r.id = o.collector_run_id where r.kind = 'external'"
        ).fetchone()[0]
        == 1
    )
    # The users sync's questions: who needs a look-up, and the directory's answer written with first and last seen.
    assert emails_to_look_up(conn, settings.raw_schema, refresh=False) == sorted(
        {row.user_email for row in rows} | {"late@x.edu"}
    )
    found = DirectoryEntry("user1@x.edu", "found", "id-1", "User One", "Physics", "Student")
    assert write_directory_entries(conn, settings.raw_schema, [found]) == 1
    assert conn.execute(
        "select department, first_seen, last_seen from raw.users where email = 'user1@x.edu'"
    ).fetchone() == ("Physics", at, at + timedelta(minutes=15))
    # Rows of each user on one shard: a worker holds every row of the users it holds.
    placements = conn.execute(
        "select count(distinct get_shard_id_for_distribution_column('raw.container_observations', user_email))"
        " from raw.container_observations"
    ).fetchone()[0]
    assert 1 < placements <= 7


def raw_tables_rows(database) -> dict[str, list[str]]:
    """Every raw table's rows as text, sorted (the test's own reading, not the command's checksum)."""
    with psycopg.connect(**database.connect_kwargs()) as conn:
        conn.execute("set timezone to 'UTC'")
        names = [
            name
            for (name,) in conn.execute(
                "select relname from pg_class join pg_namespace on pg_namespace.oid = relnamespace"
                " where nspname = 'raw' and relkind in ('r', 'p') and not relispartition"
                " and relname <> 'jupyterhub_metrics_migrations' order by 1"
            ).fetchall()
        ]
        return {
            name: sorted(text for (text,) in conn.execute(f"select t::text from raw.{name} as t").fetchall())
            for name in names
        }


def test_a_single_node_history_moves_onto_citus_with_every_row(engine_servers, database):
    """The chart's single node (TimescaleDB, compressed chunks) moved onto a coordinator by `db move-history`: every
    raw table's rows equal before and after, the marts built there equal the source's, the next run's id follows
    the moved ones, and a second move into the now full target writes nothing and says why."""
    from typer.testing import CliRunner

    from loader.cli import app
    from loader.dbt_runner import COMPLETE_BUILD_ARGS
    from loader.demo import load_synthetic_hub
    from loader.synthetic import directory_entries, synthetic_users
    from tests.dbt_helpers import compress_chunks, dbt, every_relations_rows

    single_node = engine_servers.get("timescaledb")
    source = single_node.create_database()
    try:
        source_settings = settings_for(source)
        end = datetime(2026, 11, 4, tzinfo=UTC)
        with psycopg.connect(autocommit=True, **source.connect_kwargs()) as conn:
            migrate(conn, source_settings.raw_schema, source_settings.bootstrap_sql_dir)
        load_synthetic_hub(source_settings, days=2, users=6, seed=3, end=end)
        with psycopg.connect(autocommit=True, **source.connect_kwargs()) as conn:
            write_directory_entries(conn, "raw", directory_entries(synthetic_users(6, 3), 3))
            user, pod, at = conn.execute(
                'select user_email, pod_name, "timestamp" from raw.container_observations order by 3 desc limit 1'
            ).fetchone()
            load_batch(conn, source_settings, [observation(user, pod, "cpu-1", at, cluster="another-hub")])
            copy_without_run_id(conn, source_settings, [observation("late@x.edu", "jupyter-late", "cpu-1", at)])
            assert compress_chunks(conn)
        dbt(source_settings, *COMPLETE_BUILD_ARGS)
        before = raw_tables_rows(source)
        assert all(before[name] for name in ("container_observations", "container_observations_overflow", "users"))

        settings = settings_for(database)
        with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
            migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        target = " ".join(f"{key}={value}" for key, value in database.connect_kwargs().items() if value != "")
        result = CliRunner().invoke(app, ["db", "move-history", "--to", target], env=source.environment())
        assert result.exit_code == 0, result.output
        assert f"moved {sum(map(len, before.values()))} rows of {len(before)} tables" in result.output

        assert raw_tables_rows(database) == before
        assert raw_tables_rows(source) == before  # the source is only read
        dbt(settings, *COMPLETE_BUILD_ARGS)
        assert every_relations_rows(database, "analytics") == every_relations_rows(source, "analytics")
        with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
            latest = conn.execute("select max(id) from raw.collector_runs").fetchone()[0]
            assert load_batch(conn, settings, [observation("new@x.edu", "jupyter-new", "cpu-1", end)]) > latest

        again = CliRunner().invoke(app, ["db", "move-history", "--to", target], env=source.environment())
        assert again.exit_code != 0
        assert "already holds rows" in again.output and len(again.output.strip().splitlines()) == 1
    finally:
        single_node.drop_database(source)


# The per-user marts (dbt_project/macros/distribute_by_user.sql): each incremental one and the tables per person.
DISTRIBUTED_MARTS = {
    "int_hub_activity": "user_email",
    "user_sessions": "user_email",
    "int_session_day_parts": "user_email",
    "session_days": "user_email",
    "user_session_stats": "user_email",
    "hourly_pod_usage": "user_email",
    "users": "email",
}
INCREMENTAL_PER_USER = [
    "user_sessions",
    "int_session_day_parts",
    "session_days",
    "user_session_stats",
    "hourly_pod_usage",
]
# What holds raw rows: a step that gathers any of these on the coordinator is a copy of history.
RAW_ROW_TABLES = ("container_observations", "container_observations_overflow", "hub_servers")


def relations_in(plan: object) -> set[str]:
    """The tables a plan (EXPLAIN's JSON) scans, by name without the shard number."""
    found: set[str] = set()
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            found.add(plan["Relation Name"].rsplit("_", 1)[0])
        for value in plan.values():
            found |= relations_in(value)
    elif isinstance(plan, list):
        for value in plan:
            found |= relations_in(value)
    return found


def explained(conn: psycopg.Connection, statement: str) -> dict:
    return conn.execute(f"explain (format json) {statement}").fetchone()[0][0]["Plan"]


def test_the_marts_are_distributed_by_user_and_the_cycle_runs_on_the_workers(database, conn, tmp_path):
    """Per-user marts distributed by the user, co-located with the raw tables, after the first build, a cycle and a
    full refresh; each incremental per-user model's cycle statement runs on the workers (one task per shard) and
    nothing it gathers on the coordinator beforehand holds raw rows (only the watermarks' few values)."""
    settings = settings_for(database)
    conn.autocommit = True
    migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

    def batch(first_tick: int) -> list:
        return [
            observation(f"user{n}@x.edu", f"jupyter-user{n}", "cpu-1", at + timedelta(minutes=5 * tick))
            for n in range(6)
            for tick in range(first_tick, first_tick + 4)
        ]

    def hub(rows: list) -> HubSnapshot:
        servers = {row.user_email: HubServer(row.user_name, "", row.timestamp, at, None, True) for row in rows}
        return HubSnapshot(list(servers.values()), None)

    load_batch(conn, settings, batch(0), hub=hub(batch(0)))
    dbt(settings, "run", "--select", "+user_sessions", *DISTRIBUTED_MARTS)
    observations_group = citus_tables(conn)["container_observations"][2]
    marts = citus_tables(conn, "analytics")
    assert {name: marts.get(name) for name in DISTRIBUTED_MARTS} == {
        name: ("distributed", column, observations_group) for name, column in DISTRIBUTED_MARTS.items()
    }

    late = batch(4)
    load_batch(conn, settings, late, hub=hub(late))
    dbt(settings, "compile", "--select", *INCREMENTAL_PER_USER, "--target-path", str(tmp_path))
    shards = conn.execute(
        "select shard_count from citus_tables where table_name = 'raw.container_observations'::regclass"
    ).fetchone()[0]
    for name in INCREMENTAL_PER_USER:
        compiled = next(tmp_path.glob(f"compiled/**/{name}.sql")).read_text()
        plan = explained(conn, compiled)
        job = plan["Distributed Query"]["Job"]
        assert job["Task Count"] == shards, name
        gathered = set().union(*(relations_in(sub) for sub in plan["Distributed Query"].get("Subplans", [])))
        assert not gathered & set(RAW_ROW_TABLES), f"{name} gathers {sorted(gathered)} on the coordinator"
        assert relations_in(job) & {"container_observations", "user_sessions"}, name

    dbt(settings, "run", "--select", *DISTRIBUTED_MARTS)
    assert conn.execute("select count(*), sum(observation_count) from analytics.user_sessions").fetchone() == (6, 48)
    assert conn.execute(
        "select count(*) from analytics.user_sessions where last_hub_last_activity is not null"
    ).fetchone() == (6,)
    dbt(settings, "run", "--select", *DISTRIBUTED_MARTS, "--full-refresh")
    marts = citus_tables(conn, "analytics")
    assert {name: marts[name][:2] for name in DISTRIBUTED_MARTS} == {
        name: ("distributed", column) for name, column in DISTRIBUTED_MARTS.items()
    }
    assert conn.execute("select count(*), sum(observation_count) from analytics.user_sessions").fetchone() == (6, 48)

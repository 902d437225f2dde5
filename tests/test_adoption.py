"""Adopting a real predecessor database (ncsa/jupyterhub-metrics v1.2.3, compat/) in place, end to end,
with the CLI as an admin runs it: migrate, collect, users sync, build, check, exports, every dashboard
panel (this project's and the predecessor's own), and nothing of the predecessor's changed. On plain PostgreSQL and
on TimescaleDB, the engine the predecessor deploys: there its table is a hypertable with compressed chunks and its
hourly objects are continuous aggregates with their own policies."""

from __future__ import annotations

import csv
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from grafana.boards import allocations, storage
from loader.cli import app
from loader.config import PROJECT_ROOT
from stand_ins.graph import GraphApiStub, graph_user
from tests.conftest import settings_for
from tests.dbt_helpers import compress_chunks
from tests.pod_factory import KUBESPAWNER_7_POD, pod, pod_list
from tests.predecessor import create_predecessor, insert_predecessor_rows, predecessor_rows
from tests.test_dashboards import all_scope_values, check_every_panel, drop_role, make_reader

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module", params=["postgres", "timescaledb"])
def engine(request: pytest.FixtureRequest) -> str:
    """Both engines the predecessor ran on; only the tests that touch a database run twice."""
    return request.param


NOW = datetime.now(UTC).replace(second=0, microsecond=0)
PREDECESSOR_COLUMNS = (
    '"timestamp", user_email, user_name, node_name, container_image, container_base, container_version,'
    " age_seconds, pod_name"
)
# The predecessor's own Grafana queries (its users dashboard), as it ships them. User Growth uses
# TimescaleDB's time_bucket_gapfill there; on plain PostgreSQL the same count by date_trunc.
PREDECESSOR_QUERIES = {
    "Active Users (24h)": "select count(*) from users where last_seen >= now() - interval '24 hours'",
    "Users Added": "select count(*) from users where first_seen >= %(start)s and first_seen <= %(end)s",
    "Total Users": "select count(*) from users",
    "User Growth": (
        "select date_trunc('day', first_seen) as time, count(*) from users"
        " where first_seen >= %(start)s and first_seen < %(end)s group by 1 order by 1"
    ),
}
# Its other dashboards read its hourly objects and sessions (restated: the objects and columns they use).
PREDECESSOR_HOURLY_QUERIES = {
    "Containers per node": "select hour, node_name, total_containers from hourly_node_stats order by 1, 2",
    "Users per image": ("select container_base, max(unique_users) from hourly_image_stats group by 1 order by 1"),
    "Session hours": "select user_email, total_hours, gpu_hours, cpu_hours from user_session_stats order by 1",
}


def fingerprint(conn, *, adopted: bool = True) -> dict[str, object]:
    """What adoption must leave exactly as it was: the predecessor's rows and object definitions."""
    rows = conn.execute(
        f"select count(*), md5(string_agg(row({PREDECESSOR_COLUMNS})::text, ',' order by user_email, pod_name,"
        ' "timestamp")) from public.container_observations' + (" where collector_run_id is null" if adopted else "")
    ).fetchone()
    definitions = conn.execute(
        "select c.relname, pg_get_viewdef(c.oid) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'public' and c.relname in"
        " ('user_sessions', 'user_session_stats', 'hourly_node_stats', 'hourly_image_stats') order by 1"
    ).fetchall()
    indexes = conn.execute(
        "select indexname, indexdef from pg_indexes where schemaname = 'public' and tablename in"
        " ('container_observations', 'users', 'user_sessions') order by 1"
    ).fetchall()
    columns = conn.execute(
        "select table_name, column_name, data_type, is_nullable, column_default from information_schema.columns"
        " where table_schema = 'public' and table_name in ('users', 'container_observations')"
        " and column_name in ('email', 'user_id', 'full_name', 'department', 'college', 'job_title', 'first_seen',"
        " 'last_seen', 'timestamp', 'user_email', 'user_name', 'node_name', 'container_image', 'container_base',"
        " 'container_version', 'age_seconds', 'pod_name') order by 1, 2"
    ).fetchall()
    return {"rows": rows, "definitions": definitions, "indexes": indexes, "columns": columns}


def compress_and_refresh_as_the_predecessor_did(conn) -> None:
    """Its rows are years old: its policies compressed them and its aggregates hold their hours."""
    compress_chunks(conn, table="public.container_observations")
    for aggregate in ("hourly_node_stats", "hourly_image_stats"):
        conn.execute(f"call refresh_continuous_aggregate('public.{aggregate}', null, null)")


@pytest.fixture(scope="module")
def adopted(engine, module_database, tmp_path_factory):
    """A predecessor database adopted with RAW_SCHEMA=public and run through one whole day of operation."""
    folder = tmp_path_factory.mktemp("adoption")
    settings = replace(settings_for(module_database), raw_schema="public")
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
        create_predecessor(conn, "public", timescaledb=engine == "timescaledb")
        insert_predecessor_rows(conn, predecessor_rows())
        if engine == "timescaledb":
            compress_and_refresh_as_the_predecessor_did(conn)
        before = fingerprint(conn, adopted=False)
        hourly_before = {title: conn.execute(query).fetchall() for title, query in PREDECESSOR_HOURLY_QUERIES.items()}
        sessions_before = conn.execute("select * from public.user_sessions order by 1, 2, 3, 4").fetchall()

    environment = {**module_database.environment(), "RAW_SCHEMA": "public", "ACCESS_TOKEN": "token"}
    pods = [
        # user0 of the predecessor, still using the hub; and someone new.
        pod(
            KUBESPAWNER_7_POD,
            metadata__name="jupyter-user0",
            metadata__annotations={"hub.jupyter.org/username": "user0@example.edu"},
        ),
        pod(KUBESPAWNER_7_POD),
    ]
    (folder / "pods.json").write_text(json.dumps(pod_list(*pods)))
    outputs = {}

    def run(*args):
        result = CliRunner().invoke(app, list(args), env=environment)
        outputs[args] = result.output
        assert result.exit_code == 0, f"{' '.join(args)}: {result.output}"
        return result.output

    run("db", "migrate")
    for minutes in (10, 5, 0):
        run("collect", "--from-file", str(folder / "pods.json"), "--at", (NOW - timedelta(minutes=minutes)).isoformat())
    with GraphApiStub(
        [
            graph_user("user0@example.edu", "User Zero", "Fellowships", "GRAD TEACHING ASST, Physics"),
            graph_user("jane.doe@example.edu", "Jane Doe", "Siebel School Comp & Data Sci", "STUDENT"),
        ]
    ) as stub:
        stub.refused.add("user2@example.edu")
        environment["GRAPH_BASE_URL"] = stub.url
        run("users", "sync")
    run("build")
    run("check")
    run("export", "usage", "--out", str(folder / "usage.csv"))
    run("export", "departments", "--out", str(folder / "departments.csv"))
    return {
        "settings": settings,
        "database": module_database,
        "folder": folder,
        "before": before,
        "sessions_before": sessions_before,
        "hourly_before": hourly_before,
        "outputs": outputs,
    }


@pytest.fixture
def db(adopted):
    with psycopg.connect(autocommit=True, **adopted["database"].connect_kwargs()) as conn:
        yield conn


def test_predecessor_rows_views_and_indexes_are_unchanged(adopted, db):
    before, after = adopted["before"], fingerprint(db)
    assert set(before["indexes"]) <= set(after["indexes"])  # adoption adds indexes, never changes one
    assert {**after, "indexes": None} == {**before, "indexes": None}
    assert before["rows"][0] == len(predecessor_rows())


def test_the_old_materialized_view_still_refreshes_and_sees_new_rows(adopted, db):
    db.execute("refresh materialized view concurrently public.user_sessions")
    sessions = db.execute("select * from public.user_sessions order by 1, 2, 3, 4").fetchall()
    assert set(adopted["sessions_before"]) < set(sessions)
    assert db.execute("select count(*) from public.user_session_stats").fetchone()[0] == 4


def test_the_old_hourly_objects_and_session_views_still_answer_and_keep_their_rows(engine, adopted, db):
    """Its hourly objects (continuous aggregates with their own policies on TimescaleDB) answer every old hour as
    before; the aggregates still refresh, and see the new collector's rows."""
    answers = {title: db.execute(query).fetchall() for title, query in PREDECESSOR_HOURLY_QUERIES.items()}
    old_hours = [row for row in answers["Containers per node"] if row[0] < datetime(2025, 1, 1, tzinfo=UTC)]
    assert old_hours == adopted["hourly_before"]["Containers per node"]
    assert set(adopted["hourly_before"]["Users per image"]) <= set(answers["Users per image"])
    assert len(answers["Session hours"]) == 4
    if engine == "timescaledb":
        kept = db.execute(
            "select segmentby from timescaledb_information.hypertable_compression_settings"
            " where hypertable = 'public.container_observations'::regclass"
        ).fetchone()[0]
        assert kept == "user_email,node_name,container_base"  # the predecessor's own compression
        aggregates = {
            row[0]
            for row in db.execute(
                "select view_name from timescaledb_information.continuous_aggregates where view_schema = 'public'"
            ).fetchall()
        }
        assert aggregates == {"hourly_node_stats", "hourly_image_stats", "container_observations_hourly"}
        db.execute("call refresh_continuous_aggregate('public.hourly_node_stats', null, null)")
        recent = db.execute("select count(*) from hourly_node_stats where hour > now() - interval '1 day'").fetchone()
        assert recent[0] >= 1
        assert (
            db.execute(
                "select count(*) from timescaledb_information.chunks where hypertable_name = 'container_observations'"
                " and is_compressed and range_end < '2025-01-01'"
            ).fetchone()[0]
            >= 1
        )


def test_directory_sync_recorded_found_not_found_and_error_without_nulls(db):
    rows = db.execute(
        "select email, user_id, directory_status, department, first_seen is not null from public.users order by email"
    ).fetchall()
    assert rows == [
        ("jane.doe@example.edu", "Jane.Doe@Example.edu", "found", "Siebel School Comp & Data Sci", True),
        ("user0@example.edu", "user0@example.edu", "found", "Fellowships", True),
        ("user1@example.edu", "user1", "not_found", None, True),
        ("user2@example.edu", "user2", "error", None, True),
    ]
    # A user first written by the sync is first seen at its first observation, not at the sync.
    first_seen = db.execute("select first_seen from public.users where email = 'user1@example.edu'").fetchone()[0]
    assert first_seen == min(row[0] for row in predecessor_rows() if row[1] == "user1@example.edu")


def test_predecessor_dashboard_queries_see_the_users_the_new_collector_saw(db):
    window = {"start": NOW - timedelta(days=1), "end": NOW + timedelta(minutes=1)}
    answers = {title: db.execute(query, window).fetchall() for title, query in PREDECESSOR_QUERIES.items()}
    assert answers["Active Users (24h)"] == [(2,)]  # user0 and jane, seen by the new collector
    assert answers["Users Added"] == [(1,)]  # jane, first seen today
    assert answers["Total Users"] == [(4,)]
    assert [count for _, count in answers["User Growth"]] == [1]


def test_marts_read_every_old_and_new_row(adopted, db):
    observations = db.execute("select count(*) from public.container_observations").fetchone()[0]
    assert observations == len(predecessor_rows()) + 6
    counted = db.execute("select sum(observation_count) from analytics.user_sessions").fetchone()[0]
    assert counted == observations
    names = dict(
        db.execute(
            "select user_email, user_name from analytics.user_sessions where cluster is null and namespace = 'jhub'"
        ).fetchall()
    )
    assert names == {"user0@example.edu": "Jane Doe", "jane.doe@example.edu": "Jane Doe"}  # GIT_AUTHOR_NAME


def test_both_exports_have_every_user(adopted):
    with open(adopted["folder"] / "usage.csv", newline="", encoding="utf-8") as handle:
        usage = list(csv.DictReader(handle))
    assert sorted(row["email"] for row in usage) == [
        "jane.doe@example.edu",
        "user0@example.edu",
        "user1@example.edu",
        "user2@example.edu",
    ]
    assert (adopted["folder"] / "departments.csv").read_text(encoding="utf-8").startswith("month,")


NOT_RECORDED_BEFORE_ADOPTION = frozenset(
    {
        "Median start-up",
        "Start-up time per day",
        "Start-up per image, node type and GPU model",
        "Failed starts per reason",
        "Failed starts per user",
        "Servers waiting now",
        "Active share",
        "Hours active",
    }
)
# Nor storage (the predecessor read none), nor allocations (the admin declares them after adopting).
NOT_RECORDED_BEFORE_ADOPTION |= {
    item["title"] for board in (storage.board(), allocations.board()) for item in board["panels"]
}


def test_every_dashboard_panel_works_on_the_adopted_database(adopted, db):
    role = f"jhm_reader_{uuid.uuid4().hex[:8]}"
    params = make_reader(db, adopted["settings"], role)
    try:
        with psycopg.connect(autocommit=True, **params) as reader:
            example_user = reader.execute(
                "select user_email from analytics.user_session_stats order by total_hours desc limit 1"
            ).fetchone()[0]
            # The dashboards' schema constant set to the adopted database's raw schema, as its admin does.
            variables = {"user": example_user, **all_scope_values(reader, {"raw_schema": "public"})}
            checked = check_every_panel(
                reader,
                variables,
                start=datetime(2024, 1, 1, tzinfo=UTC),
                end=NOW + timedelta(hours=1),
                # An adopted database has no cost rates yet, no GPU measurements (no Prometheus here), and none of
                # what the predecessor never recorded: start-ups, pods not running, the hub's view.
                may_be_empty={"Cost per department", "GPU efficiency", "GPU hours idle", "Held but idle"}
                | NOT_RECORDED_BEFORE_ADOPTION,
            )
            assert checked >= 27
    finally:
        drop_role(db, role)


def test_migrate_as_a_database_owner_who_is_not_a_superuser(database_server, tmp_path):
    admin_database = database_server.admin
    owner = f"jhm_owner_{uuid.uuid4().hex[:8]}"
    name = f"jhm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(autocommit=True, **admin_database.connect_kwargs()) as admin:
        admin.execute(sql.SQL("create role {} login password 'owner-password'").format(sql.Identifier(owner)))
        admin.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(name), sql.Identifier(owner)))
    try:
        database = replace(admin_database, name=name, user=owner, password="owner-password")
        (tmp_path / "pods.json").write_text(json.dumps(pod_list(KUBESPAWNER_7_POD)))
        environment = database.environment()
        for args in (
            ["db", "migrate"],
            ["db", "migrate"],
            ["collect", "--from-file", str(tmp_path / "pods.json"), "--at", NOW.isoformat()],
        ):
            result = CliRunner().invoke(app, args, env=environment)
            assert result.exit_code == 0, result.output
        with psycopg.connect(**database.connect_kwargs()) as conn:
            assert conn.execute("select count(*) from raw.hourly_pod_usage").fetchone()[0] == 1
            assert not conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone()[0]
    finally:
        with psycopg.connect(autocommit=True, **admin_database.connect_kwargs()) as admin:
            admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
            admin.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(owner)))


def test_the_fixture_is_the_predecessors_real_schema():
    text = (PROJECT_ROOT / "compat" / "predecessor_tables.sql").read_text()
    assert "user_id text not null" in text and "node_name text not null" in text
    assert "container_image text not null" in text and "first_seen timestamptz default now()" in text

"""TimescaleDB, the engine the chart deploys, run for real (spec 3.2): every statement bootstrap SQL has for it is
executed on a server of the engines kit (stand_ins/engines.py), case by case as admins meet them: a fresh database in
both flavours, the package installed but not preloaded, the extension arriving after the first migrate, in another
schema, a database owner who is not a superuser, an upgrade from the previous bootstrap SQL; and what the engine
does with the rows: late rows into compressed chunks, a \\copy backfill older than the aggregate's watermark, the
background jobs, and a 5-minute cycle that reads no compressed chunk without new rows."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from loader.build import build
from loader.config import PROJECT_ROOT
from loader.errors import MigrationError
from loader.migrate import migrate
from stand_ins import engines
from tests.conftest import settings_for
from tests.dbt_helpers import compress_chunks, copy_without_run_id, dbt, load_batch, observation

pytestmark = pytest.mark.dbt

BOOTSTRAP = PROJECT_ROOT / "bootstrap_sql"
# The bootstrap SQL main held before these tests ran TimescaleDB (a trigger, not a default, gave other writers' rows
# a run): databases migrated by it must upgrade in place.
PREVIOUS_BOOTSTRAP_COMMIT = "17e091f"
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
FLAVOUR_OF = {"timescaledb": engines.CHART_FLAVOUR, "timescaledb-15": engines.FLAVOURS[15]}
BOTH_FLAVOURS = pytest.mark.parametrize("engine", list(FLAVOUR_OF), indirect=True)
SESSION_MODELS = ["+user_sessions", "int_session_day_parts", "session_days", "hourly_pod_usage"]


@pytest.fixture(scope="module")
def engine(request: pytest.FixtureRequest) -> str:
    """This module's tests run on TimescaleDB (the chart's flavour) unless a test names another."""
    return getattr(request, "param", "timescaledb")


def timescaledb_objects(conn: psycopg.Connection, schema: str = "raw") -> dict[str, list[tuple]]:
    """What TimescaleDB keeps for the raw schema, as its information views show it."""
    return {
        "hypertables": conn.execute(
            "select h.hypertable_name, d.column_name, d.time_interval, h.compression_enabled"
            " from timescaledb_information.hypertables as h"
            " join timescaledb_information.dimensions as d using (hypertable_schema, hypertable_name)"
            " where h.hypertable_schema = %s order by 1",
            (schema,),
        ).fetchall(),
        "compression": conn.execute(
            "select hypertable::text, segmentby, orderby from timescaledb_information.hypertable_compression_settings"
            " where hypertable::text like %s order by 1",
            (f"{schema}.%",),
        ).fetchall(),
        "aggregates": conn.execute(
            "select view_name, materialized_only from timescaledb_information.continuous_aggregates"
            " where view_schema = %s order by 1",
            (schema,),
        ).fetchall(),
        "jobs": conn.execute(
            "select job_id, proc_name, schedule_interval, config, owner::text from timescaledb_information.jobs"
            " where proc_name not in ('policy_telemetry', 'policy_job_stat_history_retention') order by job_id"
        ).fetchall(),
    }


def relations(conn: psycopg.Connection, schema: str = "raw") -> dict[str, str]:
    return dict(
        conn.execute(
            "select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = %s and c.relkind in ('r', 'v', 'm', 'p')",
            (schema,),
        ).fetchall()
    )


# The columns every release has had (the predecessor's).
FIRST_COLUMNS = (
    '"timestamp", user_email, user_name, node_name, container_image, container_base, container_version, age_seconds,'
    " pod_name"
)


def raw_fingerprint(conn: psycopg.Connection, columns: str = "o.*") -> tuple:
    """Every raw observation, whichever chunk (compressed or not) holds it."""
    return conn.execute(
        f"select count(*), md5(string_agg(row({columns})::text, ',' order by user_email, pod_name, \"timestamp\"))"
        " from raw.container_observations as o"
    ).fetchone()


def history(users: int, days: int, *, end: datetime = NOW, step_minutes: int = 30) -> list:
    """A few users' pods observed over `days` days, up to `end`: enough rows for several weekly chunks."""
    rows = []
    for index in range(users):
        moment = end - timedelta(days=days) + timedelta(minutes=7 * index)
        while moment < end:
            node = "gpu-a100-1" if index % 2 else "cpu-1"
            rows.append(observation(f"user{index}@x.edu", f"jupyter-user{index}", node, moment, gpu_count=index % 2))
            moment += timedelta(minutes=step_minutes if moment.hour % 9 else 150)
    return rows


def as_user(rows: list, name: str) -> list:
    """The same observations, of another user's pod."""
    return [replace(row, user_email=f"{name}@x.edu", pod_name=f"jupyter-{name}", user_name=name) for row in rows]


def compressed_chunks(conn: psycopg.Connection) -> set[str]:
    """Their names (unique: TimescaleDB numbers them), as plans name them."""
    return {
        row[0]
        for row in conn.execute(
            "select chunk_name from timescaledb_information.chunks"
            " where hypertable_name = 'container_observations' and is_compressed"
        ).fetchall()
    }


def sessions_count_every_row(conn: psycopg.Connection) -> None:
    observed = conn.execute(
        "select (select count(*) from raw.container_observations) + (select count(*) from"
        " raw.container_observations_overflow)"
    ).fetchone()[0]
    counted = conn.execute("select sum(observation_count) from analytics.user_sessions").fetchone()[0]
    if counted != observed:  # what the next run to fail needs to say why: the runs read, and the chunks' states
        runs = conn.execute(
            "select runs.id, runs.kind, runs.observed_at, count(observations.*) from raw.collector_runs as runs"
            " left join raw.container_observations as observations on observations.collector_run_id = runs.id"
            " group by 1, 2, 3 order by 1"
        ).fetchall()
        built = conn.execute("select max(last_collector_run_id) from analytics.user_sessions").fetchone()[0]
        chunks = conn.execute(
            "select chunk_name, range_start, range_end, is_compressed from timescaledb_information.chunks"
            " order by range_start"
        ).fetchall()
        raise AssertionError(
            f"user_sessions counts {counted} of {observed} observations; newest run built {built}; "
            f"runs (id, kind, observed_at, rows) {runs}; chunks {chunks}; now {datetime.now(UTC)}"
        )


@BOTH_FLAVOURS
def test_a_fresh_database_gets_the_hypertable_its_compression_and_the_hourly_aggregate(engine, database_server, conn):
    migrate(conn, "raw", BOOTSTRAP)
    conn.commit()
    if database_server.server:  # the kit's build is the release the chart deploys (tests/test_chart.py)
        version = conn.execute("select extversion from pg_extension where extname = 'timescaledb'").fetchone()[0]
        assert version == FLAVOUR_OF[engine].timescaledb
        assert conn.execute("show server_version_num").fetchone()[0][:2] == str(FLAVOUR_OF[engine].postgres)
    objects = timescaledb_objects(conn)
    assert objects["hypertables"] == [("container_observations", "timestamp", timedelta(days=7), True)]
    assert objects["compression"] == [
        ("raw.container_observations", "user_email,node_name", 'pod_name,"timestamp" DESC')
    ]
    assert objects["aggregates"] == [("container_observations_hourly", False)]
    policies = {proc: (interval, config) for _, proc, interval, config, _ in objects["jobs"]}
    assert set(policies) == {"policy_compression", "policy_refresh_continuous_aggregate"}  # no retention, ever
    assert policies["policy_compression"][1]["compress_after"] == "7 days"
    refresh_interval, refresh = policies["policy_refresh_continuous_aggregate"]
    assert (refresh["start_offset"], refresh["end_offset"], refresh_interval) == (
        None,
        "01:00:00",
        timedelta(minutes=15),
    )
    # The hourly object of spec 3.2 is a view over the aggregate and the overflow table.
    found = relations(conn)
    assert found["container_observations_hourly"] == "v" and found["hourly_pod_usage"] == "v"
    definition = conn.execute("select pg_get_viewdef('raw.hourly_pod_usage')").fetchone()[0]
    assert "container_observations_hourly" in definition and "container_observations_overflow" in definition

    # Every later session of the database plans no parallel ChunkAppend (which missed rows inserted into compressed
    # chunks: hourly_objects.sql says how it was found).
    with psycopg.connect(**conn.info.get_parameters(), password=conn.info.password) as later:
        assert later.execute("show timescaledb.enable_parallel_chunk_append").fetchone()[0] == "off"

    before = (objects, found, conn.execute("select * from raw.jupyterhub_metrics_migrations order by 1").fetchall())
    assert migrate(conn, "raw", BOOTSTRAP) == []
    conn.commit()
    after = (
        timescaledb_objects(conn),
        relations(conn),
        conn.execute("select * from raw.jupyterhub_metrics_migrations order by 1").fetchall(),
    )
    assert after == before


@pytest.mark.parametrize("engine", ["timescaledb-not-preloaded"], indirect=True)
def test_installed_but_not_preloaded_gives_plain_objects_and_one_warning(settings, conn, caplog):
    for attempt in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="loader.migrate"):
            migrate(conn, "raw", BOOTSTRAP)
        conn.commit()
        warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
        assert len(warnings) == 1, (attempt, warnings)
        assert "not preloaded" in warnings[0] and "shared_preload_libraries" in warnings[0]
    assert conn.execute("select count(*) from pg_extension where extname = 'timescaledb'").fetchone()[0] == 0
    found = relations(conn)
    assert found["container_observations"] == "r" and found["hourly_pod_usage"] == "v"
    load_batch(conn, settings, history(2, 1))
    assert conn.execute("select sum(observations) from raw.hourly_pod_usage").fetchone()[0] == len(history(2, 1))


@pytest.fixture
def kit_server(engine_servers):
    """A server of the kit's for this test alone (it is restarted with other settings); stopped afterwards."""
    started: list[engines.Server] = []

    def start(preload: str | None = None) -> engines.Server:
        if not engines.built(engines.CHART_FLAVOUR):
            engine_servers.unavailable.setdefault("timescaledb-kit", engines.BUILD_HINT)
            engine_servers.get("timescaledb-kit")  # skips, or fails under CI
        started.append(engines.start(engines.CHART_FLAVOUR, "timescaledb", preload=preload))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def test_the_extension_installed_after_the_first_migrate_takes_every_row_and_keeps_grants(kit_server):
    """The package installed, then preloaded only later (the admin read the warning): the next migrate makes the
    table a hypertable with its rows, the hourly object the continuous aggregate, and whoever could read it still
    can; the marts stay as they were."""
    server = kit_server(preload="")
    database = engines.DatabaseServer(server.admin, "timescaledb", server).create_database()
    settings = settings_for(database)
    analyst = f"jhm_analyst_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
        migrate(conn, "raw", BOOTSTRAP)
        load_batch(conn, settings, history(3, 20))
        copy_without_run_id(conn, settings, as_user(history(1, 3, end=NOW - timedelta(days=5))[:20], "other"))
        conn.execute(sql.SQL("create role {}").format(sql.Identifier(analyst)))
        conn.execute(sql.SQL("grant usage on schema raw to {}").format(sql.Identifier(analyst)))
        conn.execute(sql.SQL("grant select on raw.hourly_pod_usage to {}").format(sql.Identifier(analyst)))
        dbt(settings, "run", "--select", *SESSION_MODELS)
        rows_before = raw_fingerprint(conn)
        hourly_before = conn.execute("select * from raw.hourly_pod_usage order by 1, 2, 3, 4, 5, 6, 7, 8").fetchall()
        sessions_before = conn.execute("select * from analytics.user_sessions order by session_id").fetchall()
        conn.execute("alter system set shared_preload_libraries = 'timescaledb'")
    server.restart()
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
        migrate(conn, "raw", BOOTSTRAP)
        assert timescaledb_objects(conn)["hypertables"][0][0] == "container_observations"
        assert conn.execute("select count(*) from only raw.container_observations").fetchone()[0] == 0  # in chunks
        assert raw_fingerprint(conn) == rows_before
        assert timescaledb_objects(conn)["aggregates"] == [("container_observations_hourly", False)]
        hourly_after = conn.execute("select * from raw.hourly_pod_usage order by 1, 2, 3, 4, 5, 6, 7, 8").fetchall()
        assert hourly_after == hourly_before
        assert conn.execute("select has_table_privilege(%s, 'raw.hourly_pod_usage', 'select')", (analyst,)).fetchone()[
            0
        ]
        dbt(settings, "run", "--select", *SESSION_MODELS)
        assert conn.execute("select * from analytics.user_sessions order by session_id").fetchall() == sessions_before


def as_owner(database_server) -> tuple:
    """A role that owns a new database and is no superuser, as a managed service gives one; its settings."""
    owner = f"jhm_owner_{uuid.uuid4().hex[:8]}"
    database = replace(database_server.admin, name=f"jhm_test_{uuid.uuid4().hex[:12]}")
    with psycopg.connect(autocommit=True, **database_server.admin.connect_kwargs()) as admin:
        admin.execute(sql.SQL("create role {} login password 'owner-password'").format(sql.Identifier(owner)))
        admin.execute(
            sql.SQL("create database {} owner {}").format(sql.Identifier(database.name), sql.Identifier(owner))
        )
    return owner, database, replace(database, user=owner, password="owner-password")


def drop_owner(database_server, owner: str, database) -> None:
    with psycopg.connect(autocommit=True, **database_server.admin.connect_kwargs()) as admin:
        admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database.name)))
        admin.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(owner)))


def log_job_runs(database) -> None:
    """The job history keeps failures only, unless the server logs every run (a server-wide setting, known where the
    extension is loaded: in a database that has it)."""
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as admin:
        admin.execute("alter system set timescaledb.enable_job_execution_logging = on")
        admin.execute("select pg_reload_conf()")


def wait_for_jobs(conn: psycopg.Connection, jobs: list[int], since: datetime, seconds: float = 90) -> dict:
    """Waits until the scheduler has run each job since `since`; each job's runs from its history."""
    deadline = time.monotonic() + seconds
    while True:
        runs = dict(
            conn.execute(
                "select job_id, array_agg(succeeded order by start_time) from timescaledb_information.job_history"
                " where job_id = any(%s) and start_time >= %s group by job_id",
                (jobs, since),
            ).fetchall()
        )
        # A run's history row is written when it starts (succeeded null) and completed when it ends.
        finished = set(runs) == set(jobs) and all(None not in outcomes for outcomes in runs.values())
        if finished or time.monotonic() > deadline:
            return runs
        time.sleep(0.5)


@BOTH_FLAVOURS
def test_a_database_owner_who_is_not_a_superuser_gets_everything_and_its_jobs_run(engine, database_server):
    """What TimescaleDB lets a database owner do alone (the extension is trusted): create it, make its own table a
    hypertable, compress it, keep a continuous aggregate, and own the policies, which the scheduler runs as that
    owner. Only the server's configuration (the package, shared_preload_libraries) needs a superuser first."""
    owner, database, as_them = as_owner(database_server)
    try:
        settings = settings_for(as_them)
        with psycopg.connect(autocommit=True, **as_them.connect_kwargs()) as conn:
            assert not conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone()[0]
            migrate(conn, "raw", BOOTSTRAP)
            log_job_runs(database)
            with psycopg.connect(**as_them.connect_kwargs()) as later:  # the owner may set it for the database
                assert later.execute("show timescaledb.enable_parallel_chunk_append").fetchone()[0] == "off"
            objects = timescaledb_objects(conn)
            assert objects["hypertables"][0][0] == "container_observations"
            assert {job_owner for *_, job_owner in objects["jobs"]} == {owner}
            load_batch(conn, settings, history(3, 20))
            assert len(compress_chunks(conn, timedelta(days=7))) >= 2
            since = conn.execute("select now()").fetchone()[0]
            jobs = [job_id for job_id, *_ in objects["jobs"]]
            for job_id in jobs:
                conn.execute("select alter_job(%s, next_start => now())", (job_id,))
            runs = wait_for_jobs(conn, jobs, since)
            assert runs and all(all(outcome) for outcome in runs.values()), runs
            assert set(runs) == set(jobs)
            dbt(settings, "run", "--select", *SESSION_MODELS)
            sessions_count_every_row(conn)
    finally:
        drop_owner(database_server, owner, database)


def test_the_extension_in_another_schema_is_used_once_its_owner_may(database_server):
    """A superuser put TimescaleDB in schema ext (as some managed services do): the owner's migrate fails in one
    line naming the grant it needs, then, granted, uses it there (every call qualified)."""
    owner, database, as_them = as_owner(database_server)
    try:
        with psycopg.connect(autocommit=True, **database.connect_kwargs()) as admin:
            admin.execute("create schema ext")
            admin.execute("create extension timescaledb schema ext")
        with psycopg.connect(autocommit=True, **as_them.connect_kwargs()) as conn:
            with pytest.raises(MigrationError, match=f"grant usage on schema ext to {owner}") as refused:
                migrate(conn, "raw", BOOTSTRAP)
            assert "\n" not in str(refused.value)
        with psycopg.connect(autocommit=True, **database.connect_kwargs()) as admin:
            admin.execute(sql.SQL("grant usage on schema ext to {}").format(sql.Identifier(owner)))
        with psycopg.connect(autocommit=True, **as_them.connect_kwargs()) as conn:
            migrate(conn, "raw", BOOTSTRAP)
            assert conn.execute("show search_path").fetchone()[0] == '"$user", public'
            objects = timescaledb_objects(conn)
            assert objects["hypertables"][0][:2] == ("container_observations", "timestamp")
            assert objects["aggregates"] == [("container_observations_hourly", False)]
            rows = history(2, 2)
            load_batch(conn, settings_for(as_them), rows)
            assert conn.execute("select sum(observations) from raw.hourly_pod_usage").fetchone()[0] == len(rows)
    finally:
        drop_owner(database_server, owner, database)


def previous_bootstrap(folder: Path, commit: str = PREVIOUS_BOOTSTRAP_COMMIT) -> Path:
    """bootstrap_sql as an earlier commit left it, from git (CI runs on a clone with its history)."""
    listed = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", commit, "bootstrap_sql"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, f"git cannot show {commit}: {listed.stderr.strip()}"
    for name in listed.stdout.split():
        target = folder / Path(name).relative_to("bootstrap_sql")
        target.parent.mkdir(parents=True, exist_ok=True)
        shown = subprocess.run(["git", "show", f"{commit}:{name}"], cwd=PROJECT_ROOT, capture_output=True, check=True)
        target.write_bytes(shown.stdout)
    return folder


@pytest.mark.parametrize("engine", ["postgres", "timescaledb"], indirect=True)
def test_an_upgrade_from_the_previous_bootstrap_sql_keeps_every_row_and_reads_other_writers(
    engine, database, conn, tmp_path
):
    settings = settings_for(database)
    conn.autocommit = True
    older = previous_bootstrap(tmp_path / "bootstrap_sql")
    migrate(conn, "raw", older)
    load_batch(conn, settings, history(3, 10))
    copy_without_run_id(conn, settings, as_user(history(1, 2, end=NOW - timedelta(days=3))[:30], "other"))  # trigger
    dbt(settings, "run", "--select", *SESSION_MODELS)
    if engine == "timescaledb":
        compress_chunks(conn, timedelta(days=7))
    rows_before = raw_fingerprint(conn)

    applied = migrate(conn, "raw", BOOTSTRAP)
    assert applied == sorted(
        {path.name for path in BOOTSTRAP.glob("*.sql")} - {path.name for path in older.glob("*.sql")}
    )
    assert raw_fingerprint(conn) == rows_before
    assert (
        conn.execute("select count(*) from pg_trigger where tgname = 'assign_external_collector_run'").fetchone()[0]
        == 0
    )
    # Other writers' rows still get a run of their own, now from the column's default, and the next build reads them.
    late = as_user(history(1, 1)[:12], "late")
    copy_without_run_id(conn, settings, late)
    assert conn.execute(
        "select count(distinct r.id), min(r.kind) from raw.container_observations o"
        " join raw.collector_runs r on r.id = o.collector_run_id where o.user_email = 'late@x.edu'"
    ).fetchone() == (1, "external")
    dbt(settings, "run", "--select", *SESSION_MODELS)
    sessions_count_every_row(conn)


# Earlier releases' TimescaleDB objects: the first 0002 (superseded; its checksum is accepted), whose aggregate was
# hourly_pod_activity, and the release whose aggregate was named hourly_pod_usage (renamed since, its readers kept).
EARLIER_RELEASES = {"113bf03": "hourly_pod_activity", "be0282b": "hourly_pod_usage"}


@pytest.mark.parametrize("commit", list(EARLIER_RELEASES))
def test_an_earlier_releases_aggregate_keeps_its_rows_and_readers_after_the_upgrade(database, conn, tmp_path, commit):
    conn.autocommit = True
    migrate(conn, "raw", previous_bootstrap(tmp_path / "bootstrap_sql", commit))
    aggregate = EARLIER_RELEASES[commit]
    assert timescaledb_objects(conn)["aggregates"] == [(aggregate, False)]
    rows = history(3, 3)
    with conn.cursor().copy(
        'copy raw.container_observations ("timestamp", user_email, user_name, node_name, container_image,'
        " container_base, container_version, age_seconds, pod_name) from stdin"
    ) as copy:
        for row in rows:
            copy.write_row(
                [row.timestamp, row.user_email, row.user_name, row.node_name, row.container_image]
                + [row.container_base, row.container_version, row.age_seconds, row.pod_name]
            )
    # That first release created the extension through the raw schema's search_path: its functions are there.
    extension = conn.execute("select extnamespace::regnamespace::text from pg_extension where extname = 'timescaledb'")
    conn.execute(f"call {extension.fetchone()[0]}.refresh_continuous_aggregate('raw.{aggregate}', null, null)")
    reader = f"jhm_analyst_{uuid.uuid4().hex[:8]}"
    conn.execute(sql.SQL("create role {}").format(sql.Identifier(reader)))
    conn.execute(sql.SQL("grant usage on schema raw to {}").format(sql.Identifier(reader)))
    conn.execute(sql.SQL("grant select on {} to {}").format(sql.Identifier("raw", aggregate), sql.Identifier(reader)))
    rows_before = raw_fingerprint(conn, FIRST_COLUMNS)

    migrate(conn, "raw", BOOTSTRAP)
    assert raw_fingerprint(conn, FIRST_COLUMNS) == rows_before
    aggregates = dict(timescaledb_objects(conn)["aggregates"])
    assert aggregates["container_observations_hourly"] is False
    assert conn.execute("select sum(observations) from raw.hourly_pod_usage").fetchone()[0] == len(rows)
    if aggregate == "hourly_pod_usage":  # renamed, its data kept; the view that took its name keeps its reader
        assert set(aggregates) == {"container_observations_hourly"}
        assert conn.execute("select has_table_privilege(%s, 'raw.hourly_pod_usage', 'select')", (reader,)).fetchone()[0]
    assert migrate(conn, "raw", BOOTSTRAP) == []


def test_late_rows_into_compressed_chunks_are_counted_and_the_chunks_stay_compressed(database, conn):
    settings = settings_for(database)
    conn.autocommit = True
    migrate(conn, "raw", BOOTSTRAP)
    rows = history(4, 24)
    load_batch(conn, settings, [row for row in rows if row.timestamp < NOW - timedelta(days=1)])
    dbt(settings, "run", "--select", *SESSION_MODELS)
    compressed = set(compress_chunks(conn))
    assert len(compressed) >= 3
    # A day of the present, then late rows into last week's compressed chunks: another pod of a known user, and a
    # row inside a stored session, from the loader and from another writer.
    load_batch(conn, settings, [row for row in rows if row.timestamp >= NOW - timedelta(days=1)])
    week_ago = NOW - timedelta(days=9, hours=3)
    load_batch(
        conn,
        settings,
        [
            observation("user1@x.edu", "jupyter-user1--late", "cpu-1", week_ago + timedelta(minutes=m))
            for m in (0, 5, 10)
        ],
    )
    copy_without_run_id(conn, settings, [replace(rows[40], timestamp=rows[40].timestamp + timedelta(minutes=2))])
    dbt(settings, "run", "--select", *SESSION_MODELS)
    assert {name.split(".")[-1] for name in compressed} <= compressed_chunks(conn)
    sessions_count_every_row(conn)
    incremental = conn.execute("select * from analytics.user_sessions order by session_id").fetchall()
    dbt(replace(settings, analytics_schema="rebuilt"), "run", "--select", *SESSION_MODELS, "--full-refresh")
    assert conn.execute("select * from rebuilt.user_sessions order by session_id").fetchall() == incremental
    assert {name.split(".")[-1] for name in compressed} <= compressed_chunks(conn)


def refresh_hourly_aggregate(conn: psycopg.Connection) -> None:
    """What the refresh policy does, now (waiting while the policy's own run holds the window)."""
    for _ in range(120):
        try:
            conn.execute("call refresh_continuous_aggregate('raw.container_observations_hourly', null, null)")
            return
        except psycopg.errors.LockNotAvailable:
            time.sleep(0.5)
    raise AssertionError("the continuous aggregate stayed locked by another refresh")


def test_a_copy_backfill_older_than_the_aggregates_watermark_is_counted_by_every_hourly_object(database, conn):
    """A \\copy of rows the aggregate had already materialized past: TimescaleDB records no invalidation for rows COPY
    writes into a hypertable with a row trigger, which is why other writers' run ids now come from a default."""
    settings = settings_for(database)
    conn.autocommit = True
    migrate(conn, "raw", BOOTSTRAP)
    load_batch(conn, settings, history(2, 1))
    refresh_hourly_aggregate(conn)
    dbt(settings, "run", "--select", *SESSION_MODELS)
    watermark = conn.execute(
        "select _timescaledb_functions.to_timestamp(_timescaledb_functions.cagg_watermark(mat_hypertable_id))"
        " from _timescaledb_catalog.continuous_agg where user_view_name = 'container_observations_hourly'"
    ).fetchone()[0]
    backfill = [
        observation("backfill@x.edu", "jupyter-backfill", "cpu-1", NOW - timedelta(hours=8, minutes=5 * m))
        for m in range(12)
    ]
    assert max(row.timestamp for row in backfill) < watermark
    copy_without_run_id(conn, settings, backfill)
    refresh_hourly_aggregate(conn)
    dbt(settings, "run", "--select", *SESSION_MODELS)
    counted = {
        name: conn.execute(query).fetchone()[0]
        for name, query in {
            "raw.container_observations_hourly": "select sum(observations) from raw.container_observations_hourly"
            " where user_email = 'backfill@x.edu'",
            "raw.hourly_pod_usage": "select sum(observations) from raw.hourly_pod_usage"
            " where user_email = 'backfill@x.edu'",
            "raw.hourly_node_stats": "select sum(observations) from raw.hourly_node_stats where hour in (select bucket"
            " from raw.hourly_pod_usage where user_email = 'backfill@x.edu')",
            "analytics.hourly_pod_usage": "select sum(observations) from analytics.hourly_pod_usage"
            " where user_email = 'backfill@x.edu'",
        }.items()
    }
    expected_node_stats = conn.execute(
        "select count(*) from raw.container_observations where date_trunc('hour', \"timestamp\") in (select bucket"
        " from raw.hourly_pod_usage where user_email = 'backfill@x.edu')"
    ).fetchone()[0]
    assert counted == {
        "raw.container_observations_hourly": len(backfill),
        "raw.hourly_pod_usage": len(backfill),
        "raw.hourly_node_stats": expected_node_stats,
        "analytics.hourly_pod_usage": len(backfill),
    }


@BOTH_FLAVOURS
def test_the_background_jobs_compress_and_refresh_and_their_history_says_they_succeeded(
    engine, database_server, database, conn
):
    settings = settings_for(database)
    conn.autocommit = True
    migrate(conn, "raw", BOOTSTRAP)
    log_job_runs(database)
    load_batch(conn, settings, history(3, 20))
    jobs = {proc: job_id for job_id, proc, *_ in timescaledb_objects(conn)["jobs"]}
    since = conn.execute("select now()").fetchone()[0]
    for job_id in jobs.values():
        conn.execute("select alter_job(%s, next_start => now())", (job_id,))
    runs = wait_for_jobs(conn, list(jobs.values()), since)
    assert set(runs) == set(jobs.values()), f"the scheduler did not run every job: {runs}"
    assert all(all(outcome) for outcome in runs.values()), runs
    errors = conn.execute(
        "select job_id, err_message from timescaledb_information.job_errors"
        " where job_id = any(%s) and start_time >= %s",
        (list(jobs.values()), since),
    ).fetchall()
    assert errors == []
    # And they did their work: old chunks compressed, every hour but the last materialized.
    assert len(compressed_chunks(conn)) >= 2
    (materialization,) = conn.execute(
        "select h.schema_name || '.' || h.table_name from _timescaledb_catalog.continuous_agg as a"
        " join _timescaledb_catalog.hypertable as h on h.id = a.mat_hypertable_id"
        " where a.user_view_name = 'container_observations_hourly'"
    ).fetchone()
    materialized = conn.execute(f"select count(*) from {materialization}").fetchone()[0]
    assert materialized > 0


# The scans that read compressed data: a chunk's columnar scan (2.28 and 2.29 plans call it ColumnarScan; older
# ones DecompressChunk), or a scan of the compressed table behind a chunk.
COLUMNAR_SCANS = {"ColumnarScan", "DecompressChunk"}
LOG_ENTRY = re.compile(r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


def plans_logged(text: str) -> list[dict]:
    """auto_explain's plans (JSON) in a server log."""
    plans = []
    for entry in LOG_ENTRY.split(text):
        if "plan:" in entry:
            plans.append(json.loads(entry.split("plan:", 1)[1]))
    return plans


def executed_nodes(node: dict) -> list[dict]:
    found = [node] if node.get("Actual Loops") else []
    for child in node.get("Plans", []):
        found += executed_nodes(child)
    return found


def chunks_of_the_last_day(conn: psycopg.Connection) -> set[str]:
    return {
        row[0]
        for row in conn.execute(
            "select distinct pg_class.relname from raw.container_observations"
            " join pg_class on pg_class.oid = container_observations.tableoid"
            " where \"timestamp\" >= now() - interval '1 day'"
        ).fetchall()
    }


def test_the_cycle_reads_no_compressed_chunk_that_holds_no_new_row(database_server, database, conn):
    """Every statement of one collection and one cycle build, captured with auto_explain (analyze) on a database with
    three weeks of compressed history: pods that keep running, new pods, and a late row of this week."""
    if database_server.log is None:
        if __import__("os").environ.get("CI") == "true":
            pytest.fail("the statement capture reads the server's log: it needs a server started by the kit")
        pytest.skip("the statement capture reads the server's log: it needs a server started by the kit")
    settings = settings_for(database)
    conn.autocommit = True
    migrate(conn, "raw", BOOTSTRAP)
    rows = history(12, 24, end=NOW - timedelta(minutes=5), step_minutes=5)
    load_batch(conn, settings, [row for row in rows if row.timestamp < NOW - timedelta(days=1)])
    load_batch(conn, settings, [row for row in rows if row.timestamp >= NOW - timedelta(days=1)])
    build(settings)
    assert len(compress_chunks(conn, timedelta(days=7))) >= 2
    assert compressed_chunks(conn).isdisjoint(chunks_of_the_last_day(conn))
    conn.execute("analyze raw.container_observations")
    for setting, value in (
        ("session_preload_libraries", "auto_explain"),
        ("auto_explain.log_min_duration", "0"),
        ("auto_explain.log_analyze", "on"),
        ("auto_explain.log_timing", "off"),
        ("auto_explain.log_nested_statements", "on"),
        ("auto_explain.log_format", "json"),
    ):
        conn.execute(
            sql.SQL("alter database {} set {} = {}").format(
                sql.Identifier(database.name), sql.Identifier(*setting.split(".")), sql.Literal(value)
            )
        )
    log = database_server.log
    offset = log.stat().st_size
    running = [
        observation(
            f"user{index}@x.edu",
            f"jupyter-user{index}",
            "gpu-a100-1" if index % 2 else "cpu-1",
            NOW,
            gpu_count=index % 2,
        )
        for index in range(0, 12, 2)
    ]
    new = [observation(f"new{index}@x.edu", f"jupyter-new{index}", "cpu-1", NOW) for index in range(7)]
    late = [replace(rows[-30], timestamp=rows[-30].timestamp + timedelta(seconds=30))]
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as collection:
        load_batch(collection, settings, running + new + late, observed_at=late[0].timestamp)
    result = build(settings)
    assert not result.complete, "a cycle, not a complete build"
    with log.open(encoding="utf-8", errors="replace") as stream:
        stream.seek(offset)
        plans = plans_logged(stream.read())
    for setting in ("session_preload_libraries",):
        conn.execute(
            sql.SQL("alter database {} reset {}").format(sql.Identifier(database.name), sql.Identifier(setting))
        )
    captured = " ".join(plan.get("Query Text", "") for plan in plans)
    assert all(f"model.jupyterhub_metrics.{model}" in captured for model in ("user_sessions", "int_session_day_parts"))
    with_new_rows = {
        row[0]
        for row in conn.execute(
            "select distinct pg_class.relname from raw.container_observations"
            " join pg_class on pg_class.oid = container_observations.tableoid"
            " where collector_run_id = (select max(id) from raw.collector_runs)"
        ).fetchall()
    }
    compressed = compressed_chunks(conn)
    offenders = []
    for plan in plans:
        for node in executed_nodes(plan["Plan"]):
            relation = node.get("Relation Name", "")
            columnar = node.get("Custom Plan Provider") in COLUMNAR_SCANS and relation in compressed
            # A compressed chunk's data read directly (its internal table): none of those holds new rows here.
            behind = relation.startswith("compress_hyper_")
            if (columnar and relation not in with_new_rows) or behind:
                offenders.append((plan.get("Query Text", "")[:300].replace("\n", " "), relation))
    assert offenders == []

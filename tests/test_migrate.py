"""`db migrate`: ordered, recorded, idempotent, refuses edits, adopts a predecessor database in place."""

import re
import shutil

import pytest
from typer.testing import CliRunner

from loader.config import PROJECT_ROOT
from loader.errors import MigrationError
from loader.migrate import migrate
from tests.predecessor import create_predecessor, insert_predecessor_rows, predecessor_rows

BOOTSTRAP = PROJECT_ROOT / "bootstrap_sql"


def relations(conn, schema):
    return dict(
        conn.execute(
            "select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = %s and c.relkind in ('r', 'v', 'm')",
            (schema,),
        ).fetchall()
    )


def test_fresh_database_gets_raw_tables_and_views(conn):
    applied = migrate(conn, "raw", BOOTSTRAP)
    assert applied == sorted(path.name for path in BOOTSTRAP.glob("*.sql"))
    found = relations(conn, "raw")
    assert found["container_observations"] == "r"
    assert found["users"] == "r"
    assert found["collector_runs"] == "r"
    assert found["container_observations_overflow"] == "r"
    for view in ("hourly_node_stats", "hourly_image_stats", "hourly_pod_usage"):
        assert found[view] == "v"
    # The predecessor's column names (its dashboards work on a fresh database too), plus observations.
    assert columns_of(conn, "raw", "hourly_node_stats") == [
        "hour",
        "node_name",
        "unique_users",
        "total_containers",
        "avg_age_seconds",
        "observations",
    ]
    assert columns_of(conn, "raw", "hourly_image_stats") == [
        "hour",
        "container_base",
        "container_version",
        "unique_users",
        "total_containers",
    ]


def columns_of(conn, schema, table):
    return [
        row[0]
        for row in conn.execute(
            "select column_name from information_schema.columns where table_schema = %s"
            " and table_name = %s order by ordinal_position",
            (schema, table),
        ).fetchall()
    ]


def test_migrate_twice_is_a_no_op(conn):
    migrate(conn, "raw", BOOTSTRAP)
    before = conn.execute(
        "select filename, checksum, applied_at from raw.jupyterhub_metrics_migrations order by 1"
    ).fetchall()
    assert migrate(conn, "raw", BOOTSTRAP) == []
    after = conn.execute(
        "select filename, checksum, applied_at from raw.jupyterhub_metrics_migrations order by 1"
    ).fetchall()
    assert before == after


def test_changed_applied_file_is_refused(conn, tmp_path):
    folder = tmp_path / "sql"
    shutil.copytree(BOOTSTRAP, folder)
    migrate(conn, "raw", folder)
    first = sorted(folder.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    (folder / "9999_new.sql").write_text("create table if not exists later (id int);")
    with pytest.raises(MigrationError, match=first.name):
        migrate(conn, "raw", folder)
    # Nothing after the refusal was applied.
    assert "later" not in relations(conn, "raw")


def test_failed_file_is_rolled_back_whole(conn, tmp_path):
    folder = tmp_path / "sql"
    shutil.copytree(BOOTSTRAP, folder)
    (folder / "9999_broken.sql").write_text("create table half_done (id int);\nselect no_such_function();")
    with pytest.raises(MigrationError, match="9999_broken.sql"):
        migrate(conn, "raw", folder)
    assert "half_done" not in relations(conn, "raw")
    assert (
        conn.execute(
            "select count(*) from raw.jupyterhub_metrics_migrations where filename = '9999_broken.sql'"
        ).fetchone()[0]
        == 0
    )


def test_adopting_a_predecessor_database_keeps_every_row_and_view(conn):
    create_predecessor(conn, "public")
    rows = predecessor_rows()
    insert_predecessor_rows(conn, rows)
    sessions_before = conn.execute("select * from public.user_sessions order by 1, 2, 3, 5").fetchall()
    stats_before = conn.execute("select * from public.user_session_stats order by 1").fetchall()

    migrate(conn, "public", BOOTSTRAP)

    assert conn.execute("select count(*) from public.container_observations").fetchone()[0] == len(rows)
    kept = conn.execute(
        'select "timestamp", user_email, user_name, node_name, container_image, container_base,'
        " container_version, age_seconds, pod_name from public.container_observations order by 1, 2, 9"
    ).fetchall()
    assert kept == sorted(rows, key=lambda row: (row[0], row[1], row[8]))
    new_columns = conn.execute(
        "select count(*) from information_schema.columns where table_schema = 'public'"
        " and table_name = 'container_observations'"
        " and column_name in ('cluster', 'pod_uid', 'gpu_count', 'collector_run_id')"
    ).fetchone()[0]
    assert new_columns == 4
    assert conn.execute("select count(*), min(department) from public.users").fetchone() == (1, "Fellowships")
    # The old views still answer, and the materialized view still refreshes, concurrently too.
    conn.commit()
    conn.autocommit = True
    conn.execute("refresh materialized view concurrently public.user_sessions")
    assert conn.execute("select * from public.user_sessions order by 1, 2, 3, 5").fetchall() == sessions_before
    assert conn.execute("select * from public.user_session_stats order by 1").fetchall() == stats_before
    assert migrate(conn, "public", BOOTSTRAP) == []


FORBIDDEN = re.compile(
    r"\b(drop\s+(table|schema|materialized\s+view|view|index|column)|truncate|delete\s+from|drop_chunks|"
    r"add_retention_policy|alter\s+table\s+\S+\s+drop)\b",
    re.IGNORECASE,
)


def forbidden_statements(folder):
    offenders = []
    for path in sorted(folder.rglob("*.sql")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if FORBIDDEN.search(line.split("--", 1)[0]):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    return offenders


# An index holds no rows. This one is this project's own key of its own table, replaced in the same file by a key
# that holds the same rows once (with the user first, the column Citus distributes by); no predecessor index is ever
# dropped (tests/test_adoption.py).
REPLACED_KEYS = ["0011_pending_pods_keyed_by_user.sql:7: drop index if exists pending_pods_key;"]


def test_bootstrap_sql_never_drops_truncates_or_deletes():
    assert forbidden_statements(BOOTSTRAP) == REPLACED_KEYS


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE users;",
        "truncate container_observations;",
        "delete  from users where true;",
        "alter table users drop column email;",
        "select add_retention_policy('container_observations', interval '1 year');",
    ],
)
def test_the_forbidden_statement_check_catches_offenders(tmp_path, statement):
    (tmp_path / "0001_bad.sql").write_text(f"create table if not exists x (id int);\n{statement}\n")
    assert forbidden_statements(tmp_path) == [f"0001_bad.sql:2: {statement}"]


def test_cli_migrate(database, monkeypatch):
    from loader.cli import app

    for key, value in database.environment().items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    first = runner.invoke(app, ["db", "migrate"])
    assert (
        first.exit_code == 0 and f"applied {len(list(BOOTSTRAP.glob('*.sql')))} bootstrap SQL file(s)" in first.output
    )
    second = runner.invoke(app, ["db", "migrate"])
    assert second.exit_code == 0 and "up to date" in second.output


def test_cli_readonly_role_reads_its_settings(database, conn, monkeypatch):
    import uuid

    import psycopg

    from loader.cli import app

    role = f"jhm_cli_reader_{uuid.uuid4().hex[:8]}"
    for key, value in database.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("READONLY_DB_USER", role)
    monkeypatch.setenv("READONLY_DB_PASSWORD", "")
    refused = CliRunner().invoke(app, ["db", "readonly-role"])
    assert refused.exit_code == 2 and "READONLY_DB_PASSWORD" in refused.output
    monkeypatch.setenv("READONLY_DB_PASSWORD", "s3cret")
    assert CliRunner().invoke(app, ["db", "migrate"]).exit_code == 0
    assert CliRunner().invoke(app, ["build"]).exit_code == 0
    try:
        result = CliRunner().invoke(app, ["db", "readonly-role"])
        assert result.exit_code == 0, result.output
        assert f"role {role} reads the dashboards' relations in {database.name} only" in result.output
        assert "statements limited to 60 s" in result.output
        with psycopg.connect(**{**database.connect_kwargs(), "user": role}) as reader:
            assert reader.execute("select count(*) from analytics.hourly_pod_usage").fetchone() == (0,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute("select count(*) from raw.container_observations")
    finally:
        conn.rollback()
        conn.execute(f"drop owned by {role}")
        conn.execute(f"drop role {role}")
        conn.commit()


TIMESCALEDB_FUNCTIONS = (
    "create_hypertable",
    "add_compression_policy",
    "add_continuous_aggregate_policy",
    "alter_job",
    "time_bucket",
)


def test_timescaledb_calls_are_qualified_and_never_read_superuser_settings():
    """The extension may live in any schema (tests/test_timescaledb.py runs each case on a real server): every call
    names its schema, the preload is found without reading a superuser-only setting, and the extension is never
    created in the raw schema."""
    text = "\n".join(path.read_text() for path in sorted(BOOTSTRAP.rglob("*.sql")))
    code = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    for function in TIMESCALEDB_FUNCTIONS:
        for match in re.finditer(rf"(\S*){function}\(", code):
            assert match.group(1).endswith("%I."), f"unqualified {function}: {match.group(0)}"
    assert "current_setting('shared_preload_libraries'" not in code
    assert re.search(r"create extension if not exists timescaledb schema public", code)


def test_repeatable_step_runs_at_every_migrate_and_changes_nothing_the_second_time(conn):
    migrate(conn, "raw", BOOTSTRAP)
    conn.commit()
    before = relations(conn, "raw")
    assert migrate(conn, "raw", BOOTSTRAP) == []
    assert relations(conn, "raw") == before
    assert (
        conn.execute("select count(*) from raw.jupyterhub_metrics_migrations where filename like 'hourly%'").fetchone()[
            0
        ]
        == 0
    )


def test_a_database_that_applied_the_first_0002_is_accepted(conn):
    migrate(conn, "raw", BOOTSTRAP)
    from loader.migrate import SUPERSEDED_CHECKSUMS

    (old,) = SUPERSEDED_CHECKSUMS["0002_hourly_aggregates.sql"]
    conn.execute(
        "update raw.jupyterhub_metrics_migrations set checksum = %s where filename = '0002_hourly_aggregates.sql'",
        (old,),
    )
    conn.commit()
    assert migrate(conn, "raw", BOOTSTRAP) == []


def test_an_earlier_hourly_view_is_replaced_in_place_with_its_grants(conn):
    """A database migrated by an earlier release holds hourly_pod_usage over container_observations only, granted
    to the dashboards' role: the next migrate counts the overflow table too, and the grant stays."""
    import uuid

    migrate(conn, "raw", BOOTSTRAP)
    role = f"jhm_hourly_reader_{uuid.uuid4().hex[:8]}"
    conn.execute(
        "create or replace view raw.hourly_pod_usage as select date_trunc('hour', \"timestamp\" at time zone 'UTC')"
        " at time zone 'UTC' as bucket, cluster, namespace, node_name, container_base, container_version, user_email,"
        " pod_name, count(*) as observations, count(age_seconds) as aged_observations,"
        " sum(age_seconds) as age_seconds_sum from raw.container_observations group by 1, 2, 3, 4, 5, 6, 7, 8"
    )
    conn.execute(f"create role {role}")
    conn.execute(f"grant select on raw.hourly_pod_usage to {role}")
    for table, namespace in (("container_observations", "jhub"), ("container_observations_overflow", "jhub-2")):
        conn.execute(
            f'insert into raw.{table} ("timestamp", user_email, node_name, container_image, container_base, pod_name,'
            " namespace, age_seconds) values ('2026-11-02 10:00+00', 'a@x.edu', 'n', 'i', 'i', 'jupyter-a', %s, 60)",
            (namespace,),
        )
    conn.commit()
    try:
        assert conn.execute("select sum(observations) from raw.hourly_pod_usage").fetchone()[0] == 1
        migrate(conn, "raw", BOOTSTRAP)
        conn.commit()
        assert conn.execute("select sum(observations), count(*) from raw.hourly_pod_usage").fetchone() == (2, 2)
        assert conn.execute("select has_table_privilege(%s, 'raw.hourly_pod_usage', 'select')", (role,)).fetchone() == (
            True,
        )
    finally:
        conn.rollback()
        conn.execute(f"drop owned by {role}")
        conn.execute(f"drop role {role}")
        conn.commit()

"""The dbt project on a known data set: marts, data and unit tests, freshness, and raw data kept safe."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from loader.dbt_runner import CHECK_TEST_ARGS, COMPLETE_BUILD_ARGS, run_dbt, target_dir
from loader.errors import LoaderError
from loader.migrate import migrate
from tests.conftest import settings_for
from tests.dbt_helpers import copy_without_run_id, dbt, load_batch, observation

pytestmark = pytest.mark.dbt

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
EXPORT_COLUMNS = [
    "fullname",
    "email",
    "department",
    "jobtitle",
    "gpu_hours",
    "cpu_hours",
    "total_hours",
    "total_sessions",
    "last_seen",
    "favorite_container",
    "active_hours",
    "median_startup_seconds",
]


def every_five_minutes(user, pod, node, start, minutes, **kwargs):
    return [observation(user, pod, node, start + timedelta(minutes=m), **kwargs) for m in range(0, minutes + 1, 5)]


def known_observations():
    return (
        every_five_minutes(
            "alice@x.edu",
            "jupyter-alice",
            "gpu-a100-1",
            T0,
            90,
            pod_uid="a1",
            container_base="pytorch-notebook",
            gpu_count=2,
        )
        + every_five_minutes(
            "alice@x.edu",
            "jupyter-alice",
            "cpu-1",
            T0 + timedelta(hours=3),
            30,
            pod_uid="a2",
            container_base="r-notebook",
            gpu_count=0,
        )
        + every_five_minutes(
            "bob@x.edu",
            "jupyter-bob",
            "cpu-2",
            T0 - timedelta(hours=1),
            45,
            pod_uid="b1",
            container_base="scipy-notebook",
        )
        # carol: a month earlier, so department_usage has two months
        + every_five_minutes(
            "carol@x.edu",
            "jupyter-carol",
            "gpu-v100-1",
            T0 - timedelta(days=30),
            60,
            pod_uid="c1",
            container_base="pytorch-notebook",
            gpu_count=None,
        )
    )


@pytest.fixture(scope="module")
def built(module_database):
    settings = settings_for(module_database)
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        load_batch(conn, settings, known_observations())
        conn.execute(
            "insert into raw.users (email, full_name, department, job_title, directory_status, fetched_at) values"
            " ('alice@x.edu', 'Alice Ådahl', 'Fellowships', 'GRAD TEACHING ASST, Siebel School Comp & Data Sci',"
            "  'found', now()),"
            " ('carol@x.edu', 'Carol O''Neil', 'Physics', 'PROFESSOR', 'found', now()),"
            " ('dave@x.edu', null, null, null, 'not_found', now())"
            # Collection already added the users it saw; the directory fills in the rest.
            " on conflict (email) do update set full_name = excluded.full_name, department = excluded.department,"
            " job_title = excluded.job_title, directory_status = excluded.directory_status,"
            " fetched_at = excluded.fetched_at"
        )
    dbt(settings, *COMPLETE_BUILD_ARGS)  # models and snapshot, as after every collection
    dbt(settings, *CHECK_TEST_ARGS)  # every data test, as `jupyterhub-metrics check` runs them
    dbt(settings, "test", "--resource-type", "unit_test")  # unit tests need the built tables
    return settings


@pytest.fixture
def analytics(built):
    with psycopg.connect(autocommit=True, **built.database.connect_kwargs()) as conn:
        yield conn


def test_export_shape_and_values(analytics):
    cursor = analytics.execute("select * from analytics.user_usage_stats order by email")
    assert [column.name for column in cursor.description] == EXPORT_COLUMNS
    rows = [tuple(str(value) if value is not None else None for value in row) for row in cursor.fetchall()]
    assert rows == [
        (
            "Alice Ådahl",
            "alice@x.edu",
            "Siebel School Comp & Data Sci",
            "GRAD TEACHING ASST",
            "1.50",
            "0.50",
            "2.00",
            "2",
            "2026-03-02T13:30:00+00:00",
            "pytorch-notebook",
            None,
            None,
        ),
        (
            None,
            "bob@x.edu",
            None,
            None,
            "0.00",
            "0.75",
            "0.75",
            "1",
            "2026-03-02T09:45:00+00:00",
            "scipy-notebook",
            None,
            None,
        ),
        (
            "Carol O'Neil",
            "carol@x.edu",
            "Physics",
            "PROFESSOR",
            "1.00",
            "0.00",
            "1.00",
            "1",
            "2026-01-31T11:00:00+00:00",
            "pytorch-notebook",
            None,
            None,
        ),
    ]


def test_user_session_stats(analytics):
    alice = analytics.execute(
        "select total_hours, gpu_hours, cpu_hours, gpu_device_hours, total_sessions, applications_used,"
        " first_session, last_session from analytics.user_session_stats where user_email = 'alice@x.edu'"
    ).fetchone()
    assert alice == (2.0, 1.5, 0.5, 3.0, 2, 2, T0, T0 + timedelta(hours=3, minutes=30))
    carol_device_hours = analytics.execute(
        "select gpu_device_hours from analytics.user_session_stats where user_email = 'carol@x.edu'"
    ).fetchone()[0]
    assert carol_device_hours is None  # GPU request unknown, not zero


def test_users_mart_covers_observed_and_directory_users(analytics):
    rows = analytics.execute(
        "select email, department, directory_status, first_seen is not null from analytics.users order by email"
    ).fetchall()
    assert rows == [
        ("alice@x.edu", "Siebel School Comp & Data Sci", "found", True),
        ("bob@x.edu", None, "not_fetched", True),
        ("carol@x.edu", "Physics", "found", True),
        ("dave@x.edu", None, "not_found", False),
    ]


def test_department_usage(analytics):
    rows = analytics.execute(
        "select month, department, users, sessions, total_hours, gpu_hours, cpu_hours"
        " from analytics.department_usage order by month, department"
    ).fetchall()
    assert rows == [
        (datetime(2026, 1, 1).date(), "Physics", 1, 1, 1.0, 1.0, 0.0),
        (datetime(2026, 3, 1).date(), "Siebel School Comp & Data Sci", 1, 2, 2.0, 1.5, 0.5),
        (datetime(2026, 3, 1).date(), "Unknown", 1, 1, 0.75, 0.0, 0.75),
    ]


def test_nodes_mart_and_hourly_sources(analytics):
    assert analytics.execute("select node_name, node_type from analytics.nodes order by 1").fetchall() == [
        ("cpu-1", "cpu"),
        ("cpu-2", "cpu"),
        ("gpu-a100-1", "gpu"),
        ("gpu-v100-1", "gpu"),
    ]
    distinct_users, observations = analytics.execute(
        "select sum(unique_users), sum(observations) from raw.hourly_node_stats"
    ).fetchone()
    assert observations == len(known_observations())
    assert distinct_users >= 4


def test_full_refresh_leaves_every_raw_row_in_place(built, analytics):
    def raw_fingerprint():
        return {
            table: analytics.execute(
                f"select count(*), md5(string_agg(t::text, '|' order by t::text)) from raw.{table} t"
            ).fetchone()
            for table in ("container_observations", "users", "collector_runs")
        }

    before = raw_fingerprint()
    dbt(built, "build", "--full-refresh")
    assert raw_fingerprint() == before
    assert before["container_observations"][0] == len(known_observations())


def test_source_freshness_reads_collector_runs(built, analytics):
    assert run_dbt(built, ["source", "freshness"])
    # A last successful collection two hours ago is past the 60-minute error threshold.
    analytics.execute("update raw.collector_runs set finished_at = now() - interval '2 hours' where kind = 'collect'")
    assert not run_dbt(built, ["source", "freshness"])


def test_models_never_build_into_the_raw_schema(built, analytics):
    with pytest.raises(LoaderError, match="is the raw schema"):
        run_dbt(replace(built, analytics_schema="raw"), ["run", "--select", "stg_raw__users"])
    assert analytics.execute("select to_regclass('raw.stg_raw__users')").fetchone()[0] is None


def test_docs_generate_and_every_model_and_column_is_described(built):
    assert run_dbt(built, ["docs", "generate"])
    target = target_dir(built)
    catalog = json.loads((target / "catalog.json").read_text())
    manifest = json.loads((target / "manifest.json").read_text())
    missing = []
    for unique_id, entry in catalog["nodes"].items():
        node = manifest["nodes"][unique_id]
        if not node.get("description", "").strip():
            missing.append(unique_id)
        described = {name.lower() for name, column in node["columns"].items() if column.get("description", "").strip()}
        missing += [f"{unique_id}.{name}" for name in entry["columns"] if name.lower() not in described]
    assert "model.jupyterhub_metrics.user_sessions" in catalog["nodes"]
    assert missing == []
    # Sources too: at least 95% of the columns of every source table are described.
    for unique_id, entry in catalog["sources"].items():
        source = manifest["sources"][unique_id]
        assert source.get("description", "").strip(), unique_id
        described = {
            name.lower() for name, column in source["columns"].items() if column.get("description", "").strip()
        }
        share = sum(name.lower() in described for name in entry["columns"]) / len(entry["columns"])
        assert share >= 0.95, f"{unique_id}: {share:.0%} of columns described"
    overview = [
        doc
        for doc in manifest["docs"].values()
        if doc["name"] == "__overview__" and doc["package_name"] == "jupyterhub_metrics"
    ]
    assert overview and "Where to start" in overview[0]["block_contents"]


def test_no_colour_codes_when_output_is_not_a_terminal(tmp_path):
    import subprocess
    import sys

    from loader.config import PROJECT_ROOT

    environment = {key: value for key, value in __import__("os").environ.items() if key != "DBT_USE_COLORS"}
    result = subprocess.run(
        [sys.executable, "-m", "loader", "dbt", "parse"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={**environment, "DBT_TARGET_PATH": str(tmp_path)},
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Performance info" in result.stdout or "Running with dbt" in result.stdout
    assert "\x1b[" not in result.stdout + result.stderr


# A class, so that pytest-xdist (--dist loadscope) may run this, one of the longest tests, beside the module's others.
class TestPlainDbt:
    def test_plain_dbt_commands_in_the_project_folder(self, database, tmp_path):
        """What an analyst types in dbt_project/: no flags, the profile reading DB_*, a fresh database with raw data;
        then the same after another collection."""
        import subprocess

        from loader.config import PROJECT_ROOT

        settings = settings_for(database)
        with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
            migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
            load_batch(conn, settings, known_observations())
        environment = {
            **__import__("os").environ,
            **database.environment(),
            "DBT_TARGET_PATH": str(tmp_path / "target"),
        }
        dbt_binary = str(PROJECT_ROOT / ".venv" / "bin" / "dbt")

        def plain(*args):
            result = subprocess.run(
                [dbt_binary, *args],
                cwd=PROJECT_ROOT / "dbt_project",
                env=environment,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert result.returncode == 0, f"dbt {' '.join(args)}:\n{result.stdout[-3000:]}"
            return result.stdout

        first = plain("build")
        assert "ERROR=0" in first and "SKIP=0" in first
        plain("build")
        plain("test")
        plain("docs", "generate")
        with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
            load_batch(
                conn, settings, every_five_minutes("erin@x.edu", "jupyter-erin", "cpu-1", T0 + timedelta(days=1), 20)
            )
            # Another writer (a psql backfill, the predecessor's collector): its rows open a run of kind external.
            copy_without_run_id(
                conn, settings, every_five_minutes("frank@x.edu", "jupyter-frank", "cpu-1", T0 + timedelta(days=1), 10)
            )
            assert "ERROR=0" in plain("build")
            assert "ERROR=0" in plain("test")
            assert conn.execute(
                "select count(*) filter (where user_email = 'erin@x.edu'),"
                " count(*) filter (where user_email = 'frank@x.edu') from analytics.user_sessions"
            ).fetchone() == (1, 1)
        # The loader's own build and check, with the external run present.
        from typer.testing import CliRunner

        from loader.cli import app

        cli_environment = {**database.environment(), "DBT_TARGET_PATH": str(tmp_path / "target")}
        for command in (["build"], ["check"]):
            result = CliRunner().invoke(app, command, env=cli_environment)
            assert result.exit_code == 0, result.output


def test_data_tests_fail_on_negative_or_non_finite_resources(database):
    """What a psql backfill could write that the loader never does: `check` must say so."""
    settings = settings_for(database)
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        load_batch(conn, settings, known_observations()[:3])
        dbt(settings, *COMPLETE_BUILD_ARGS)
        assert run_dbt(settings, ["test", "--select", "stg_raw__container_observations"])
        conn.execute(
            'insert into raw.container_observations ("timestamp", user_email, node_name, container_image,'
            " container_base, pod_name, gpu_count, cpu_request) values"
            " (now(), 'x@x.edu', 'n', 'i', 'i', 'p', -4, 'NaN')"
        )
        assert not run_dbt(settings, ["test", "--select", "stg_raw__container_observations"])


def test_a_cluster_that_stopped_reporting_fails_check_and_warns_in_plain_dbt(database):
    settings = settings_for(database)
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        load_batch(conn, settings, known_observations()[:3])  # cluster "test", collected now
        conn.execute(
            "insert into raw.collector_runs (kind, cluster, started_at, finished_at, observed_at, status)"
            " values ('collect', 'retired-yesterday', now() - interval '2 hours', now() - interval '2 hours',"
            " now() - interval '2 hours', 'succeeded')"
        )
        dbt(settings, *COMPLETE_BUILD_ARGS)
    select = ["--select", "assert_every_cluster_collected_recently"]
    assert run_dbt(settings, ["test", *select])  # a warning
    assert not run_dbt(settings, [*CHECK_TEST_ARGS, *select])  # `check`: an error


def test_every_model_has_a_uniqueness_test_and_every_session_mart_a_relationship(built):
    """Where rows could multiply (a join, a rate, a merge), a test would notice."""
    assert run_dbt(built, ["parse"])
    manifest = json.loads((target_dir(built) / "manifest.json").read_text())
    unique_tested, related = set(), set()
    for node in manifest["nodes"].values():
        if node["resource_type"] != "test":
            continue
        name = node.get("test_metadata", {}).get("name")
        models = [dependency for dependency in node["depends_on"]["nodes"] if dependency.startswith("model.")]
        if name in ("unique", "unique_combination"):
            unique_tested.update(models)
        if name == "relationships":
            related.add(models[-1] if models[-1] != "model.jupyterhub_metrics.user_sessions" else models[0])
    models = {key for key, node in manifest["nodes"].items() if node["resource_type"] == "model"}
    staging_views = {key for key in models if ".stg_" in key and "container_observations" in key}
    assert models - unique_tested - staging_views == set()
    for mart in ("session_days", "session_costs", "department_sessions"):
        assert f"model.jupyterhub_metrics.{mart}" in related, mart

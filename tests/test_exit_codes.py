"""Exit codes and --json (spec 5): 0 the run was recorded, 1 it failed, 2 a wrong command line or configuration,
3 `check` found failing data tests or stale sources; --json prints the run's summary as one JSON object on stdout
(logs and dbt's output on stderr), and the failure as JSON too."""

from __future__ import annotations

import json

import psycopg
import pytest
from typer.testing import CliRunner

from loader.cli import app
from loader.config import DatabaseSettings
from loader.errors import ExitCode
from tests.pod_factory import KUBESPAWNER_7_POD, pod_list

pytestmark = pytest.mark.dbt


def invoke(environment: dict[str, str], *args: str):
    return CliRunner().invoke(app, list(args), env=environment)


@pytest.fixture(scope="module")
def collected(module_database, tmp_path_factory):
    folder = tmp_path_factory.mktemp("exit")
    (folder / "pods.json").write_text(json.dumps(pod_list(KUBESPAWNER_7_POD)))
    environment = {**module_database.environment(), "DBT_TARGET_PATH": str(folder / "target")}
    assert invoke(environment, "db", "migrate").exit_code == 0
    return environment, folder


def test_a_recorded_collection_is_0_and_its_summary_is_json_on_stdout(collected):
    environment, folder = collected
    result = invoke(environment, "collect", "--from-file", str(folder / "pods.json"), "--json")
    assert result.exit_code == ExitCode.OK, result.output
    summary = json.loads(result.stdout)
    assert summary["command"] == "collect" and summary["status"] == "succeeded"
    assert summary["rows_recorded"] == 1 and summary["pods_listed"] == 1 and summary["run_id"] > 0


def test_a_build_is_0_with_a_json_summary_and_dbts_log_on_stderr(collected):
    environment, _ = collected
    result = invoke(environment, "build", "--json")
    assert result.exit_code == ExitCode.OK, result.output
    summary = json.loads(result.stdout)  # stdout holds nothing else
    assert summary["command"] == "build" and summary["status"] == "succeeded"
    assert summary["statuses"]["success"] >= 10 and summary["problems"] == []
    assert "Running with dbt" in result.stderr


def test_a_build_from_all_history_leaves_statistics_for_the_dashboards_plans(collected):
    """Tables made from all history (a first build, --full-refresh) are analysed by the build itself, so panels are
    planned from their sizes even before autovacuum has seen them (or where it is off)."""
    environment, _ = collected
    database = DatabaseSettings(
        host=environment["DB_HOST"], port=int(environment["DB_PORT"]), name=environment["DB_NAME"], sslmode="disable"
    )
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
        conn.execute("select pg_stat_reset()")
        assert invoke(environment, "build", "--full-refresh").exit_code == ExitCode.OK
        analysed = conn.execute(
            "select count(distinct tablename) from pg_stats where schemaname = 'analytics'"
            " and tablename in ('user_sessions', 'session_days', 'hourly_pod_usage', 'int_session_day_parts')"
        ).fetchone()[0]
    assert analysed == 4


def test_marts_of_an_earlier_release_are_rebuilt_once_by_a_plain_build(collected):
    """An upgrade: marts built under an earlier rules version, with an earlier column set (here hourly_pod_usage
    without `pods`), would fail an incremental build (on_schema_change=fail); build rebuilds them once and says so."""
    environment, _ = collected
    database = DatabaseSettings(
        host=environment["DB_HOST"], port=int(environment["DB_PORT"]), name=environment["DB_NAME"], sslmode="disable"
    )
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
        conn.execute("alter table analytics.hourly_pod_usage drop column pods")
        conn.execute("update analytics.rules_in_force set value = '3: an earlier release' where rule = 'rules_version'")
        upgraded = invoke(environment, "build")
        assert upgraded.exit_code == ExitCode.OK, upgraded.output
        assert "built under rules version '3: an earlier release'; rebuilt them from all history" in upgraded.output
        assert conn.execute("select sum(pods) from analytics.hourly_pod_usage").fetchone()[0] == 1
        again = invoke(environment, "build")
        assert again.exit_code == ExitCode.OK and "rebuilt" not in again.output


def test_checks_that_find_problems_are_3(collected):
    environment, _ = collected
    passed = invoke(environment, "check", "--json")
    assert passed.exit_code == ExitCode.OK, passed.output
    assert json.loads(passed.stdout)["status"] == "succeeded"
    database = DatabaseSettings(
        host=environment["DB_HOST"], port=int(environment["DB_PORT"]), name=environment["DB_NAME"], sslmode="disable"
    )
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
        # What a psql backfill could write and the loader never does: a negative GPU request.
        conn.execute(
            'insert into raw.container_observations ("timestamp", user_email, node_name, container_image,'
            " container_base, pod_name, gpu_count) values (now(), 'x@x.edu', 'n', 'i', 'i', 'p', -4)"
        )
        try:
            failed = invoke(environment, "check", "--json")
            assert failed.exit_code == ExitCode.CHECKS_FAILED, failed.output
            summary = json.loads(failed.stdout)
            assert summary["status"] == "failed" and summary["exit_code"] == 3
            assert any("gpu_count" in problem["node"] for problem in summary["tests"]["problems"])
            assert [line for line in failed.stderr.splitlines() if line.startswith("Error: check failed: data tests:")]
        finally:
            conn.execute("delete from raw.container_observations where user_email = 'x@x.edu'")


def test_an_unreachable_database_is_1_also_for_check(tmp_path):
    environment = {"DB_HOST": "127.0.0.1", "DB_PORT": "1", "DB_NAME": "nope", "DBT_TARGET_PATH": str(tmp_path)}
    for command in (["check"], ["build"], ["collect", "--from-file", "x.json"]):
        result = invoke(environment, *command, "--json")
        assert result.exit_code == ExitCode.FAILED, (command, result.output)
        assert json.loads(result.stdout)["exit_code"] == 1
        assert result.stderr.startswith("Error: cannot connect to PostgreSQL at postgres@127.0.0.1:1/nope")
        if command == ["build"]:  # failed before dbt ran: nothing published, and --json says so
            assert json.loads(result.stdout)["published"] is False


def test_a_wrong_command_line_or_configuration_is_2(collected, tmp_path):
    environment, folder = collected
    assert invoke(environment, "collect", "--no-such-flag").exit_code == ExitCode.USAGE
    assert invoke({**environment, "DB_PORT": "five"}, "build").exit_code == ExitCode.USAGE
    weak = invoke({**environment, "EXPORT_HMAC_KEY": "short"}, "export", "usage", "--pseudonymize", "--out", "x.csv")
    assert weak.exit_code == ExitCode.USAGE and "EXPORT_HMAC_KEY is too weak" in weak.output
    bad_time = invoke(environment, "collect", "--from-file", str(folder / "pods.json"), "--at", "soon", "--json")
    assert bad_time.exit_code == ExitCode.USAGE and json.loads(bad_time.stdout)["exit_code"] == 2

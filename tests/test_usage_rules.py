"""The numbers a director asks for, on known data: GPU against CPU time on nodes whose names say nothing,
idle time from measured use, hours split at midnight and month ends, and cost with two rate periods."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from loader.dbt_runner import COMPLETE_BUILD_ARGS
from loader.migrate import migrate
from tests.conftest import settings_for
from tests.dbt_helpers import dbt, load_batch, observation

pytestmark = pytest.mark.dbt

IDLE, BUSY = Decimal("0.01"), Decimal("1.5")


def every_five_minutes(user, pod, node, start, hours, **kwargs):
    return [
        observation(user, pod, node, start + timedelta(minutes=m), **kwargs) for m in range(0, int(hours * 60) + 1, 5)
    ]


@pytest.fixture(scope="module")
def built(module_database):
    settings = settings_for(module_database)
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        load_batch(
            conn,
            settings,
            # Generic node names (no "cpu" in either): the request decides.
            every_five_minutes(
                "gpu@x.edu",
                "jupyter-gpu",
                "worker-7",
                datetime(2026, 6, 10, 10, tzinfo=UTC),
                1,
                gpu_count=1,
                cpu_usage_cores=IDLE,
            )
            + every_five_minutes(
                "cpu@x.edu",
                "jupyter-cpu",
                "worker-8",
                datetime(2026, 6, 10, 10, tzinfo=UTC),
                1,
                gpu_count=0,
                cpu_usage_cores=BUSY,
            )
            # 22:00 on June 30 to 04:00 on July 1: across midnight, a month end and a rate change.
            + every_five_minutes(
                "night@x.edu", "jupyter-night", "gke-pool-1-abc", datetime(2026, 6, 30, 22, tzinfo=UTC), 6, gpu_count=2
            ),
        )
    dbt(settings, *COMPLETE_BUILD_ARGS)
    return settings


@pytest.fixture
def db(built):
    with psycopg.connect(autocommit=True, **built.database.connect_kwargs()) as conn:
        yield conn


def test_generic_node_names_gpu_pod_and_cpu_pod_one_hour_each(db):
    rows = db.execute(
        "select user_email, node_type, runtime_hours, gpu_hours, cpu_hours from analytics.user_sessions"
        " where user_email in ('gpu@x.edu', 'cpu@x.edu') order by 1"
    ).fetchall()
    assert rows == [("cpu@x.edu", "cpu", 1.0, 0.0, 1.0), ("gpu@x.edu", "gpu", 1.0, 1.0, 0.0)]
    assert dict(db.execute("select node_name, node_type from analytics.nodes").fetchall()) == {
        "worker-7": "gpu",
        "worker-8": "cpu",
        "gke-pool-1-abc": "gpu",
    }


def test_an_idle_session_is_idle_for_its_runtime_and_a_busy_one_not_at_all(db):
    rows = dict(
        (email, (idle, runtime))
        for email, idle, runtime in db.execute(
            "select user_email, idle_hours, runtime_hours from analytics.user_sessions"
        ).fetchall()
    )
    assert rows["gpu@x.edu"] == (1.0, 1.0)
    assert rows["cpu@x.edu"] == (0.0, 1.0)
    assert rows["night@x.edu"][0] is None  # never measured
    stats = dict(db.execute("select user_email, idle_gpu_hours from analytics.user_session_stats").fetchall())
    assert stats["gpu@x.edu"] == 1.0
    efficiency = db.execute(
        "select cpu_efficiency from analytics.user_session_stats where user_email = 'cpu@x.edu'"
    ).fetchone()[0]
    assert efficiency == Decimal("3")  # 1.5 cores used of 0.5 requested


def test_a_session_across_midnight_and_a_month_end_splits_exactly(db):
    days = db.execute(
        "select day::text, hours from analytics.session_days s join analytics.user_sessions u"
        " using (session_id) where u.user_email = 'night@x.edu' order by day"
    ).fetchall()
    assert days == [("2026-06-30", 2.0), ("2026-07-01", 4.0)]
    months = dict(db.execute("select month::text, total_hours from analytics.department_usage").fetchall())
    assert months == {"2026-06-01": 4.0, "2026-07-01": 4.0}
    total_days = db.execute("select sum(hours) from analytics.session_days").fetchone()[0]
    assert total_days == db.execute("select sum(runtime_hours) from analytics.user_sessions").fetchone()[0] == 8.0


def test_no_rates_means_null_cost_and_two_rate_periods_cost_each_day_at_its_rate(built, db):
    assert set(db.execute("select cost from analytics.session_costs").fetchall()) == {(None,)}
    assert set(db.execute("select cost from analytics.department_usage").fetchall()) == {(None,)}
    with_rates = replace(built, rules=(*built.rules, ("EXAMPLE_COST_RATES", "true")))
    dbt(with_rates, *COMPLETE_BUILD_ARGS)
    try:
        cost = db.execute(
            "select cost from analytics.session_costs c join analytics.user_sessions u using (session_id)"
            " where u.user_email = 'night@x.edu'"
        ).fetchone()[0]
        june = 2 * 2 * Decimal("1.20") + Decimal("0.5") * 2 * Decimal("0.030") + 1 * 2 * Decimal("0.004")
        july = 2 * 4 * Decimal("1.00") + Decimal("0.5") * 4 * Decimal("0.025") + 1 * 4 * Decimal("0.003")
        assert cost == pytest.approx(float(june + july), abs=1e-9)
        by_month = dict(db.execute("select month::text, cost from analytics.department_usage").fetchall())
        assert by_month["2026-07-01"] == pytest.approx(float(july), abs=1e-9)
        assert by_month["2026-06-01"] > float(june)  # June also holds the two one-hour sessions
    finally:
        dbt(built, *COMPLETE_BUILD_ARGS)


def test_build_says_when_a_rule_changed_and_full_refresh_applies_it(built, monkeypatch):
    from typer.testing import CliRunner

    from loader.cli import app

    for key, value in built.dbt_environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SESSION_GAP_MINUTES", "30")
    try:
        changed = CliRunner().invoke(app, ["build"])
        assert changed.exit_code == 0, changed.output
        assert "session_gap_minutes 60 -> 30" in changed.output and "build --full-refresh" in changed.output
        again = CliRunner().invoke(app, ["build", "--full-refresh"])
        assert again.exit_code == 0 and "rules changed" not in again.output
    finally:
        monkeypatch.setenv("SESSION_GAP_MINUTES", "60")
        assert CliRunner().invoke(app, ["build", "--full-refresh"]).exit_code == 0


def project_with_rates(tmp_path, rates: str):
    """A copy of the dbt project whose admin-edited cost_rates.csv holds `rates` (the project itself is untouched)."""
    import shutil

    from loader.config import PROJECT_ROOT

    copy = tmp_path / "dbt_project"
    shutil.copytree(PROJECT_ROOT / "dbt_project", copy, ignore=shutil.ignore_patterns("target", "logs"))
    (copy / "seeds" / "cost_rates.csv").write_text(rates)
    return copy


def test_overlapping_or_inverted_rates_fail_the_build_in_one_line_naming_them(built, tmp_path):
    from typer.testing import CliRunner

    from loader.cli import app

    header = "valid_from,valid_to,gpu_model,gpu_hour,cpu_core_hour,memory_gib_hour,currency\n"
    cases = {
        "2026-01-01,2026-07-01,,1,0.1,0.01,USD\n2026-06-01,2027-01-01,,2,0.1,0.01,USD\n": (
            "the periods 2026-01-01 to 2026-07-01 (any GPU model) and 2026-06-01 to 2027-01-01 (any GPU model) overlap"
        ),
        "2026-07-01,2026-01-01,,1,0.1,0.01,USD\n": "the period 2026-07-01 to 2026-01-01 (any GPU model) ends before",
    }
    environment = {**built.dbt_environment(), "DBT_TARGET_PATH": str(tmp_path / "target")}
    for rates, named in cases.items():
        project = project_with_rates(tmp_path / str(abs(hash(rates))), header + rates)
        result = CliRunner().invoke(app, ["build"], env={**environment, "DBT_PROJECT_DIR": str(project)})
        assert result.exit_code == 1, result.output
        error = [line for line in result.output.splitlines() if line.startswith("Error: ")]
        assert len(error) == 1 and named in error[0] and "cost_rates" in error[0], result.output
    # A rate for one GPU model beside one for any model is not an overlap.
    project = project_with_rates(
        tmp_path / "models",
        header + "2026-01-01,2027-01-01,,1,0.1,0.01,USD\n2026-01-01,2027-01-01,NVIDIA H100,3,0.1,0.01,USD\n",
    )
    result = CliRunner().invoke(app, ["build"], env={**environment, "DBT_PROJECT_DIR": str(project)})
    assert result.exit_code == 0, result.output


def test_hours_are_the_same_with_and_without_rates(built, db):
    columns = "month, department, total_hours, gpu_hours, users"
    without = db.execute(f"select {columns} from analytics.department_usage").fetchall()
    with_rates = replace(built, rules=(*built.rules, ("EXAMPLE_COST_RATES", "true")))
    dbt(with_rates, *COMPLETE_BUILD_ARGS)
    try:
        costed = db.execute(f"select {columns} from analytics.department_usage").fetchall()
        assert sorted(costed) == sorted(without)
        assert db.execute("select count(*) from analytics.department_usage where cost is not null").fetchone()[0] > 0
    finally:
        dbt(built, *COMPLETE_BUILD_ARGS)


@pytest.fixture(scope="module")
def gpu_built(tmp_path_factory, admin_database):
    """A GPU session measured by DCGM: busy from 20:00 to 23:00 on 30 June, idle from 23:00 to 02:00 on 1 July; an
    H100 session; a GPU session never measured but with measured CPU use (the CPU proxy)."""
    from tests.conftest import _create_database

    database = _create_database(admin_database)
    settings = settings_for(database)
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        start = datetime(2026, 6, 30, 20, tzinfo=UTC)
        rows = [
            observation(
                "night@x.edu",
                "jupyter-night",
                "gpu-a100-1",
                start + timedelta(minutes=m),
                gpu_count=1,
                gpu_utilization=Decimal("0.9") if m < 180 else Decimal("0.01"),
                gpu_model="NVIDIA A100-SXM4-80GB",
            )
            for m in range(0, 361, 5)
        ]
        rows += every_five_minutes(
            "h100@x.edu",
            "jupyter-h100",
            "gke-pool-9",
            datetime(2026, 7, 2, 10, tzinfo=UTC),
            1,
            gpu_count=1,
            gpu_utilization=Decimal("0.5"),
            gpu_model="NVIDIA H100 80GB HBM3",
        )
        rows += every_five_minutes(
            "proxy@x.edu",
            "jupyter-proxy",
            "worker-3",
            datetime(2026, 7, 2, 10, tzinfo=UTC),
            1,
            gpu_count=2,
            cpu_usage_cores=IDLE,
        )
        load_batch(conn, settings, rows)
    dbt(replace(settings, rules=(*settings.rules, ("EXAMPLE_COST_RATES", "true"))), *COMPLETE_BUILD_ARGS)
    yield settings
    from tests.conftest import _drop_database

    _drop_database(admin_database, database)


def test_idle_gpu_time_counts_in_the_day_it_happened(gpu_built):
    with psycopg.connect(**gpu_built.database.connect_kwargs()) as conn:
        days = conn.execute(
            "select day::text, hours, idle_gpu_hours, idle_signal from analytics.session_days"
            " where user_email = 'night@x.edu' order by day"
        ).fetchall()
        session = conn.execute(
            "select runtime_hours, gpu_idle_hours, idle_gpu_hours, idle_signal, avg_gpu_utilization, gpu_model_label"
            " from analytics.user_sessions where user_email = 'night@x.edu'"
        ).fetchone()
    # 23:00-00:00 idle on 30 June, 00:00-02:00 on 1 July: not 1.5 each, as a share of the session's idle total.
    assert days == [("2026-06-30", 4.0, 1.0, "gpu"), ("2026-07-01", 2.0, 2.0, "gpu")]
    assert session[:4] == (6.0, 3.0, 3.0, "gpu") and session[5] == "NVIDIA A100-SXM4-80GB"
    assert float(session[4]) == pytest.approx((36 * 0.9 + 37 * 0.01) / 73)


def test_a_gpu_never_measured_is_idle_by_the_cpu_proxy_and_the_mart_says_so(gpu_built):
    with psycopg.connect(**gpu_built.database.connect_kwargs()) as conn:
        proxy = conn.execute(
            "select idle_signal, idle_gpu_hours, gpu_idle_hours, gpu_model_label from analytics.user_sessions"
            " where user_email = 'proxy@x.edu'"
        ).fetchone()
        by_model = dict(
            conn.execute(
                "select gpu_model, idle_gpu_hours_from_cpu_proxy from analytics.department_gpu_usage"
            ).fetchall()
        )
    assert proxy == ("cpu", 1.0, None, "unknown")
    assert by_model["unknown"] == 1.0 and by_model["NVIDIA A100-SXM4-80GB"] == 0


def test_a_gpu_models_rate_applies_to_its_sessions(gpu_built):
    with psycopg.connect(**gpu_built.database.connect_kwargs()) as conn:
        costs = dict(
            conn.execute(
                "select u.user_email, c.cost from analytics.session_costs c join analytics.user_sessions u"
                " using (session_id)"
            ).fetchall()
        )
        uncosted = conn.execute("select max(uncosted_hours) from analytics.session_costs").fetchone()[0]
    # example_cost_rates: H100 at 2.90 per GPU-hour from 2000 on; any model at 1.00 from July 2026.
    assert costs["h100@x.edu"] == pytest.approx(2.90 * 1 + 0.5 * 0.025 + 1 * 0.003)
    assert costs["proxy@x.edu"] == pytest.approx(2 * 1.00 + 0.5 * 0.025 + 1 * 0.003)
    assert uncosted == 0  # fully costed sessions: 0, not null

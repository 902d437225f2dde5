"""Same input, same numbers, on every engine the product supports: the demo's hub loaded and built on plain
PostgreSQL and on each other engine (TimescaleDB; Citus, a coordinator and two workers with the raw tables
distributed by user) gives every analytics relation equal row for row; every dashboard panel runs there as the
read-only role, and `check` passes."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from loader.cli import app
from loader.dbt_runner import COMPLETE_BUILD_ARGS
from loader.demo import EXAMPLE_SEEDS, load_synthetic_hub
from loader.migrate import migrate
from loader.raw_store import write_directory_entries
from loader.synthetic import directory_entries, synthetic_users
from tests.conftest import settings_for
from tests.dbt_helpers import dbt, every_relations_rows
from tests.test_dashboards import (
    TERM_PANELS,
    all_scope_values,
    check_alert_rules,
    check_every_panel,
    drop_role,
    make_reader,
    terms_in_test_range,
)

pytestmark = pytest.mark.dbt

FAILED_START_PANELS = frozenset({"Failed starts", "Failed starts per reason", "Failed starts per user"})

# Fixed, so that the builds on each engine see the same days whenever they run.
END = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
START = END - timedelta(days=5)
USERS, DAYS, SEED = 30, 5, 11


@pytest.fixture(scope="module", params=["timescaledb", "citus"])
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


def build_the_demo_hub(database) -> dict:
    settings = settings_for(database)
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
    load_synthetic_hub(settings, days=DAYS, users=USERS, seed=SEED, end=END)
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
        write_directory_entries(conn, settings.raw_schema, directory_entries(synthetic_users(USERS, SEED), SEED))
    dbt(replace(settings, rules=(*settings.rules, *EXAMPLE_SEEDS.items())), *COMPLETE_BUILD_ARGS)
    return {"settings": settings, "database": database}


@pytest.fixture(scope="module")
def on_postgres(engine_servers):
    server = engine_servers.get("postgres")
    database = server.create_database()
    try:
        built = build_the_demo_hub(database)
        yield every_relations_rows(database, built["settings"].analytics_schema)
    finally:
        server.drop_database(database)


@pytest.fixture(scope="module")
def on_engine(engine, module_database):
    return {"engine": engine, **build_the_demo_hub(module_database)}


def test_every_analytics_relation_equals_plain_postgres_row_for_row(on_postgres, on_engine):
    on_this_engine = every_relations_rows(on_engine["database"], on_engine["settings"].analytics_schema)
    assert set(on_this_engine) == set(on_postgres)
    differing = [name for name in on_postgres if on_postgres[name] != on_this_engine[name]]
    if differing:
        expected, found = set(on_postgres[differing[0]]), set(on_this_engine[differing[0]])
        pytest.fail(
            f"{len(differing)} relations differ ({', '.join(differing)}); {differing[0]}: only on postgres "
            f"{sorted(expected - found)[:2]}, only on {on_engine['engine']} {sorted(found - expected)[:2]}"
        )
    # And there is something to compare: the demo's sessions, hours and departments.
    assert len(on_postgres["user_sessions"]) > 50 and on_postgres["department_usage"]


def test_every_dashboard_panel_runs_as_the_read_only_role(on_engine):
    settings = on_engine["settings"]
    role = f"jhm_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(autocommit=True, **on_engine["database"].connect_kwargs()) as conn:
        params = make_reader(conn, settings, role)
        example_user = conn.execute(
            "select user_email from analytics.user_session_stats order by total_hours desc limit 1"
        ).fetchone()[0]
        # The small hub's pods draw their failed starts by the weekday: some weeks it has none (tests/test_starts.py
        # covers them); their panels must still run.
        no_failed_starts = conn.execute("select count(*) = 0 from analytics.failed_starts").fetchone()[0]
        try:
            with psycopg.connect(autocommit=True, **params) as reader:
                variables = {"user": example_user, **all_scope_values(reader)}
                checked = check_every_panel(
                    reader,
                    variables,
                    start=START,
                    end=END,
                    may_be_empty=(frozenset() if terms_in_test_range() else TERM_PANELS)
                    | (FAILED_START_PANELS if no_failed_starts else frozenset()),
                )
                assert checked >= 50
                check_alert_rules(reader)  # the allocations' alert rules, as Grafana runs them
        finally:
            drop_role(conn, role)


def test_check_passes(on_engine):
    result = CliRunner().invoke(app, ["check"], env=on_engine["database"].environment())
    assert result.exit_code == 0, result.output

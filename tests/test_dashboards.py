"""Every dashboard panel's SQL, macros and variables substituted as Grafana does, runs as the read-only
role against a database built from the demo data and returns rows of the shape the panel expects."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

from loader.config import PROJECT_ROOT
from loader.dbt_runner import CYCLE_BUILD_ARGS
from loader.demo import load_synthetic_hub
from loader.migrate import migrate
from loader.raw_store import write_directory_entries
from loader.roles import ensure_readonly_role
from loader.synthetic import directory_entries, synthetic_users
from tests.conftest import settings_for
from tests.dbt_helpers import dbt
from tests.grafana_macros import expand

pytestmark = pytest.mark.dbt

DASHBOARD_DIR = PROJECT_ROOT / "grafana" / "dashboards"
END = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
START = END - timedelta(days=6)


def panels():
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        board = json.loads(path.read_text())
        for item in board["panels"]:
            yield pytest.param(board, item, id=f"{path.stem}: {item['title']}")


def all_scope_values(conn) -> dict[str, list[str]]:
    """What the cluster and namespace variables offer, as "All" selects them."""
    board = json.loads((DASHBOARD_DIR / "overview.json").read_text())
    variables = {item["name"]: item for item in board["templating"]["list"]}
    clusters = [row[0] for row in conn.execute(variables["cluster"]["query"]).fetchall()]
    namespace_query = expand(variables["namespace"]["query"], start=START, end=END, variables={"cluster": clusters})
    return {"cluster": clusters, "namespace": [row[0] for row in conn.execute(namespace_query).fetchall()]}


@pytest.fixture(scope="module")
def reader(module_database):
    """A connection as the read-only role (search_path: analytics, raw), on demo data built by dbt."""
    settings = settings_for(module_database)
    role = f"jhm_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        load_synthetic_hub(settings, days=6, users=40, seed=5, end=END)
        write_directory_entries(conn, settings.raw_schema, directory_entries(synthetic_users(40, 5), 5))
        dbt(settings, *CYCLE_BUILD_ARGS)
        ensure_readonly_role(conn, role, "reader-password", [settings.analytics_schema, settings.raw_schema])
        example_user = conn.execute(
            "select user_email from analytics.user_session_stats order by total_hours desc limit 1"
        ).fetchone()[0]
    params = {**module_database.connect_kwargs(), "user": role, "password": "reader-password"}
    with psycopg.connect(autocommit=True, **params) as connection:
        yield connection, {"user": example_user, **all_scope_values(connection)}
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
        conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


def generator():
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_dashboards", PROJECT_ROOT / "grafana" / "build_dashboards.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_exposures_are_generated_from_what_each_dashboard_reads():
    module = generator()
    boards = module.all_dashboards()
    assert module.EXPOSURES.read_text() == module.exposures_yaml(boards), "run `python grafana/build_dashboards.py`"
    models, sources = module.dbt_references()
    for name, board in boards.items():
        queries = [item["targets"][0]["rawSql"] for item in board["panels"]]
        queries += [variable["query"] for variable in board["templating"]["list"]]
        named = {name for query in queries for _, name in module.RELATION.findall(query)}
        # Every relation a panel reads is a dbt model or a declared source, so none is missing from the exposure.
        assert named - set(models) - set(sources) == set(), name
        assert module.relations_read(board), name


def test_dashboard_files_are_the_generator_output():
    module = generator()
    on_disk = {path.name: path.read_text() for path in DASHBOARD_DIR.glob("*.json")}
    assert on_disk == module.rendered(), "run `python grafana/build_dashboards.py` and commit the result"
    assert set(on_disk) == {
        "overview.json",
        "users.json",
        "user-detail.json",
        "demographics.json",
        "applications.json",
        "nodes.json",
    }


def check_panel(conn, item, variables, *, start=START, end=END):
    """Runs the panel's SQL as Grafana would and checks the rows have the shape its visualisation needs."""
    target = item["targets"][0]
    query = expand(target["rawSql"], start=start, end=end, interval="1h", variables=variables)
    cursor = conn.execute(query)
    columns = [column.name for column in cursor.description]
    rows = cursor.fetchall()
    assert rows, f"no rows for {item['title']}"
    numeric = (int, float, Decimal)
    if target["format"] == "time_series":
        assert columns[0] == "time"
        value_columns = [name for name in columns[1:] if name != "metric"]
        assert value_columns
        for row in rows:
            assert isinstance(row[0], (datetime, *numeric))
            values = dict(zip(columns, row, strict=True))
            assert all(values[name] is None or isinstance(values[name], numeric) for name in value_columns)
    elif item["type"] == "stat":
        assert len(rows) == 1 and all(isinstance(value, numeric) for value in rows[0])
    elif item["type"] in ("piechart", "barchart"):
        assert any(isinstance(value, numeric) for value in rows[0])
    else:
        assert len(set(columns)) == len(columns)


@pytest.mark.parametrize(("board", "item"), list(panels()))
def test_panel_query_runs_and_has_the_expected_shape(reader, board, item):
    conn, variables = reader
    assert item["datasource"]["uid"] == "jupyterhub-metrics"
    check_panel(conn, item, variables)


def test_user_variable_cannot_change_the_query(reader):
    conn, variables = reader
    detail = json.loads((DASHBOARD_DIR / "user-detail.json").read_text())
    hostile = "x' or '1'='1'; drop table analytics.users; --"
    for item in detail["panels"]:
        query = expand(item["targets"][0]["rawSql"], start=START, end=END, variables={**variables, "user": hostile})
        assert conn.execute(query).fetchall() == []  # no user has that name: nothing, not everything
    assert conn.execute("select count(*) from users").fetchone()[0] > 0


def test_reader_role_cannot_write(reader):
    conn, _ = reader
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("delete from raw.container_observations")

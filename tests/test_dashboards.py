"""Every dashboard panel's SQL, macros and variables substituted as Grafana does, runs as the read-only
role against a database built from the demo data and returns rows of the shape the panel expects."""

from __future__ import annotations

import csv
import json
import re
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import jsonschema
import psycopg
import pytest
from psycopg import sql

from grafana.macros import expand
from loader.config import PROJECT_ROOT
from loader.dbt_runner import COMPLETE_BUILD_ARGS
from loader.demo import EXAMPLE_SEEDS, load_synthetic_hub
from loader.migrate import migrate
from loader.raw_store import write_directory_entries
from loader.roles import cancel_overrunning_reader_queries, ensure_readonly_role
from loader.synthetic import directory_entries, synthetic_users
from tests.conftest import settings_for
from tests.dbt_helpers import dbt

pytestmark = pytest.mark.dbt

DASHBOARD_DIR = PROJECT_ROOT / "grafana" / "dashboards"
END = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
START = END - timedelta(days=6)


def dashboard_panels():
    """Every panel of every dashboard: (its name as `dashboard: title`, its board, the panel)."""
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        board = json.loads(path.read_text())
        for item in board["panels"]:
            yield f"{path.stem}: {item['title']}", board, item


def panels():
    for name, board, item in dashboard_panels():
        yield pytest.param(board, item, id=name)


def all_scope_values(conn, schemas: dict[str, str] | None = None) -> dict[str, str | list[str]]:
    """What the cluster and namespace variables offer, as "All" selects them (and the schema constants)."""
    board = json.loads((DASHBOARD_DIR / "overview.json").read_text())
    variables = {item["name"]: item for item in board["templating"]["list"]}
    known: dict[str, str | list[str]] = {"analytics_schema": "analytics", "raw_schema": "raw", **(schemas or {})}
    cluster_query = expand(variables["cluster"]["query"], start=START, end=END, variables=known)
    known["cluster"] = [row[0] for row in conn.execute(cluster_query).fetchall()]
    namespace_query = expand(variables["namespace"]["query"], start=START, end=END, variables=known)
    known["namespace"] = [row[0] for row in conn.execute(namespace_query).fetchall()]
    demographics = json.loads((DASHBOARD_DIR / "demographics.json").read_text())
    department = next(v for v in demographics["templating"]["list"] if v["name"] == "department")
    department_query = expand(department["query"], start=START, end=END, variables=known)
    known["department"] = [row[0] for row in conn.execute(department_query).fetchall()]
    return known


def make_reader(conn, settings, role: str, **limits) -> dict:
    """The dashboards' role as `db readonly-role` makes it; connection parameters to log in as it."""
    ensure_readonly_role(conn, role, "reader-password", [settings.analytics_schema, settings.raw_schema], **limits)
    dbt(settings, "run-operation", "grant_dashboard_reads", "--args", json.dumps({"role": role}))
    return {**settings.database.connect_kwargs(), "user": role, "password": "reader-password"}


def drop_role(conn, role: str) -> None:
    conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(role)))
    conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


@pytest.fixture(scope="module")
def reader(module_database):
    """A connection as the read-only role (default search_path), on demo data built by dbt."""
    settings = settings_for(module_database)
    role = f"jhm_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        load_synthetic_hub(settings, days=6, users=40, seed=5, end=END)
        write_directory_entries(conn, settings.raw_schema, directory_entries(synthetic_users(40, 5), 5))
        # Like the demo: example cost rates, so the cost panels have numbers to show.
        dbt(replace(settings, rules=(*settings.rules, *EXAMPLE_SEEDS.items())), *COMPLETE_BUILD_ARGS)
        params = make_reader(conn, settings, role)
        example_user = conn.execute(
            "select user_email from analytics.user_session_stats order by total_hours desc limit 1"
        ).fetchone()[0]
    with psycopg.connect(autocommit=True, **params) as connection:
        yield connection, {"user": example_user, **all_scope_values(connection)}
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
        drop_role(conn, role)


def generator():
    from grafana import build_dashboards

    return build_dashboards


def test_exposures_are_generated_from_what_each_dashboard_reads():
    module = generator()
    boards = module.all_dashboards()
    assert module.EXPOSURES.read_text() == module.exposures_yaml(boards), "run `python -m grafana.build_dashboards`"
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
    assert on_disk == module.rendered(), "run `python -m grafana.build_dashboards` and commit the result"
    assert set(on_disk) == {
        "overview.json",
        "users.json",
        "user-detail.json",
        "demographics.json",
        "applications.json",
        "nodes.json",
        "gpus.json",
        "starts.json",
        "activity.json",
        "storage.json",
        "allocations.json",
    }


def check_panel(conn, item, variables, *, start=START, end=END, may_be_empty=frozenset()):
    """Runs the panel's SQL as Grafana would and checks the rows have the shape its visualisation needs."""
    target = item["targets"][0]
    query = expand(target["rawSql"], start=start, end=end, interval="1h", variables=variables)
    cursor = conn.execute(query)
    columns = [column.name for column in cursor.description]
    rows = cursor.fetchall()
    if not rows and item["title"] in may_be_empty:
        return
    assert rows, f"no rows for {item['title']}"
    numeric = (int, float, Decimal)
    empty = item["title"] in may_be_empty
    if target["format"] == "time_series":
        assert columns[0] == "time"
        value_columns = [name for name in columns[1:] if name != "metric"]
        assert value_columns
        for row in rows:
            assert isinstance(row[0], (datetime, *numeric))
            values = dict(zip(columns, row, strict=True))
            assert all(values[name] is None or isinstance(values[name], numeric) for name in value_columns)
    elif item["type"] == "stat":
        assert len(rows) == 1 and all(isinstance(value, numeric) or (empty and value is None) for value in rows[0])
    elif item["type"] in ("piechart", "barchart"):
        # A panel that may show nothing here (cost without rates) still returns rows of the right shape.
        assert any(isinstance(value, numeric) or (empty and value is None) for value in rows[0])
    else:
        assert len(set(columns)) == len(columns)


def check_every_panel(conn, variables, *, start, end, may_be_empty=frozenset()) -> int:
    """check_panel for every panel of every dashboard; how many it checked."""
    checked = 0
    for _, _, item in dashboard_panels():
        check_panel(conn, item, variables, start=start, end=end, may_be_empty=may_be_empty)
        checked += 1
    return checked


def terms_in_test_range() -> bool:
    """Whether a term of the shipped seed overlaps the days the demo data covers (in a break, none does)."""
    with (PROJECT_ROOT / "dbt_project" / "seeds" / "terms.csv").open(encoding="utf-8") as stream:
        return any(
            date.fromisoformat(row["starts_on"]) <= END.date() and date.fromisoformat(row["ends_on"]) >= START.date()
            for row in csv.DictReader(stream)
        )


TERM_PANELS = frozenset({"Per term and group", "Per term and department"})


@pytest.mark.parametrize(("board", "item"), list(panels()))
def test_panel_query_runs_and_has_the_expected_shape(reader, board, item):
    conn, variables = reader
    assert item["datasource"]["uid"] == item["targets"][0]["datasource"]["uid"] == "${datasource}"
    assert item["description"].strip() and " Reads " in item["description"]
    check_panel(conn, item, variables, may_be_empty=frozenset() if terms_in_test_range() else TERM_PANELS)


def test_user_variable_cannot_change_the_query(reader):
    conn, variables = reader
    detail = json.loads((DASHBOARD_DIR / "user-detail.json").read_text())
    hostile = "x' or '1'='1'; drop table analytics.users; --"
    for item in detail["panels"]:
        query = expand(item["targets"][0]["rawSql"], start=START, end=END, variables={**variables, "user": hostile})
        assert conn.execute(query).fetchall() == []  # no user has that name: nothing, not everything
    assert conn.execute("select count(*) from analytics.users").fetchone()[0] > 0


def test_reader_role_cannot_write(reader):
    conn, _ = reader
    with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction)):
        conn.execute("delete from raw.container_observations")


@pytest.mark.parametrize("path", sorted(DASHBOARD_DIR.glob("*.json")), ids=lambda path: path.stem)
def test_dashboard_json_is_importable_anywhere(path):
    """Through Grafana's import UI into a Grafana that is not ours: a data source variable the user picks,
    no fixed data source uid anywhere, every relation schema-qualified (no search_path assumed)."""
    board = json.loads(path.read_text())
    variables = {item["name"]: item for item in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "grafana-postgresql-datasource"
    assert {variables[name]["type"] for name in ("analytics_schema", "raw_schema")} == {"constant"}
    text = json.dumps(board)
    assert '"uid": "jupyterhub-metrics"' not in text and "__inputs" not in board
    assert board.get("id") is None  # a new dashboard on import, never overwriting one by id
    for item in board["panels"]:
        for name in re.findall(r"(?<!distinct )(?<!epoch )\b(?:from|join)\s+([^\s(]+)", item["targets"][0]["rawSql"]):
            assert name.startswith(("${analytics_schema}.", "${raw_schema}.")), (item["title"], name)


def test_the_role_cannot_lift_its_timeout_create_temp_tables_or_read_other_relations(reader, module_database):
    conn, _ = reader
    assert conn.execute("show statement_timeout").fetchone()[0] == "1min"
    assert conn.execute("show search_path").fetchone()[0] == '"$user", public'
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("create temporary table scratch (id int)")
    conn.execute("set default_transaction_read_only = off")  # a role may; TEMP is still refused
    try:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("create temporary table scratch (id int)")
    finally:
        conn.execute("reset default_transaction_read_only")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # dashboards never read the raw observations
        conn.execute("select count(*) from raw.container_observations")
    assert conn.execute("select count(*) > 0 from analytics.user_sessions").fetchone()[0]


def test_a_statement_past_the_timeout_is_cancelled_even_after_set_statement_timeout_0(module_database):
    settings = settings_for(module_database)
    role = f"jhm_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as admin:
        params = make_reader(admin, settings, role, statement_timeout_seconds=1)
        try:
            with psycopg.connect(autocommit=True, **params) as lifted:
                lifted.execute("set statement_timeout = 0")  # allowed: PostgreSQL lets every role do this
                outcome: list[object] = []

                def long_query():
                    try:
                        lifted.execute("select pg_sleep(20)")
                        outcome.append("finished")
                    except psycopg.errors.QueryCanceled:
                        outcome.append("cancelled")

                worker = threading.Thread(target=long_query)
                worker.start()
                time.sleep(2.0)
                assert cancel_overrunning_reader_queries(admin, role, 1) == 1
                worker.join(timeout=10)
                assert outcome == ["cancelled"]
        finally:
            drop_role(admin, role)


def test_the_role_connects_to_its_own_database_only(admin_database):
    """As a database owner who owns another database too: with --restrict-other-databases the role cannot
    connect there; the owner's other databases and everyone else's are left as they were otherwise."""
    owner, role = f"jhm_owner_{uuid.uuid4().hex[:8]}", f"jhm_reader_{uuid.uuid4().hex[:8]}"
    ours, other = f"jhm_test_{uuid.uuid4().hex[:12]}", f"jhm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(autocommit=True, **admin_database.connect_kwargs()) as admin:
        admin.execute(
            sql.SQL("create role {} login createrole password 'owner-password'").format(sql.Identifier(owner))
        )
        for name in (ours, other):
            admin.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(name), sql.Identifier(owner)))
    try:
        as_owner = replace(admin_database, name=ours, user=owner, password="owner-password")
        with psycopg.connect(autocommit=True, **as_owner.connect_kwargs()) as conn:
            warned = ensure_readonly_role(conn, role, "reader-password", ["analytics", "raw"])
            assert other in warned  # PUBLIC still has CONNECT there: said, not changed
            assert ensure_readonly_role(
                conn, role, "reader-password", ["analytics", "raw"], restrict_other_databases=True
            ) == [name for name in warned if name != other]
        reader_on = {**as_owner.connect_kwargs(), "user": role, "password": "reader-password"}
        with psycopg.connect(**reader_on):
            pass
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            psycopg.connect(**{**reader_on, "dbname": other})
    finally:
        with psycopg.connect(autocommit=True, **admin_database.connect_kwargs()) as admin:
            for name in (ours, other):
                admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
            admin.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(owner)))


ALERT_RULE_SCHEMA = {
    # Written from Grafana's documentation of file provisioning for alert rules ("Import alerting resources", the
    # rule fields of a group); required where Grafana requires them, enums as documented.
    "type": "object",
    "required": ["apiVersion", "groups"],
    "properties": {
        "apiVersion": {"const": 1},
        "groups": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["orgId", "name", "folder", "interval", "rules"],
                "properties": {
                    "interval": {"type": "string", "pattern": "^[0-9]+[smh]$"},
                    "rules": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["uid", "title", "condition", "data", "noDataState", "execErrState", "for"],
                            "properties": {
                                "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
                                "noDataState": {"enum": ["Alerting", "NoData", "OK", "KeepLast"]},
                                "execErrState": {"enum": ["Alerting", "Error", "OK", "KeepLast"]},
                                "for": {"type": "string", "pattern": "^[0-9]+[smh]$"},
                                "data": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["refId", "datasourceUid", "model"],
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def check_alert_rules(conn, schemas: dict[str, str] | None = None) -> int:
    """Every alert rule's query, run as Grafana runs it: string labels and one number per current allocation, and
    the allocations it fires for are those whose figures (read here) pass its condition. How many fired."""
    from grafana import alerts

    status = conn.execute(
        "select allocation_name, percent_used, first_warning_percent, second_warning_percent, runs_out_before_end,"
        " status from analytics.allocation_status where period_state = 'current'"
    ).fetchall()
    expected = {
        "jhm-allocation-first-warning": {row[0] for row in status if row[1] >= row[2]},
        "jhm-allocation-second-warning": {row[0] for row in status if row[1] >= row[3]},
        "jhm-allocation-runs-out-early": {row[0] for row in status if row[4] and row[5] != "exhausted"},
    }
    fired = 0
    for rule in alerts.provisioning()["groups"][0]["rules"]:
        query = rule["data"][0]["model"]["rawSql"].replace(
            "analytics.", f"{(schemas or {}).get('analytics_schema', 'analytics')}."
        )
        cursor = conn.execute(query)
        columns = [column.name for column in cursor.description]
        rows = cursor.fetchall()
        assert len(rows) == len(status), rule["uid"]
        numbers = [name for name, value in zip(columns, rows[0], strict=True) if isinstance(value, (int, Decimal))]
        assert numbers == ["firing"], rule["uid"]  # one value; every other column a label
        assert {row[0] for row in rows if row[-1] == 1} == expected[rule["uid"]], rule["uid"]
        fired += len(expected[rule["uid"]])
    return fired


def test_the_alert_rules_file_is_the_generator_output_and_grafanas_format():
    import yaml

    from grafana import alerts

    assert alerts.ALERTS.read_text() == alerts.rendered(), "run `python -m grafana.build_dashboards`"
    document = yaml.safe_load(alerts.ALERTS.read_text())
    jsonschema.validate(document, ALERT_RULE_SCHEMA)
    rules = document["groups"][0]["rules"]
    assert len({rule["uid"] for rule in rules}) == len(rules) == 3
    for rule in rules:
        assert rule["data"][0]["datasourceUid"] == "jupyterhub-metrics"  # the chart's data source
        assert rule["condition"] in {item["refId"] for item in rule["data"]}


def test_every_alert_rules_query_runs_as_the_read_only_role(reader):
    """As Grafana runs them (tests/test_allocations.py has allocations that fire each rule)."""
    conn, _ = reader
    check_alert_rules(conn)

"""The build after each collection: once the project's files and rules have been built completely, `build` runs only
the `cycle` selector (incremental models, tables, the snapshot); any change of files or rules, a plain `dbt build` (or
any dbt run of a view or seed) in between, or a complete build that failed makes the next build complete again."""

from __future__ import annotations

import json
import shutil

import psycopg
import pytest
import yaml
from typer.testing import CliRunner

from loader.build import project_fingerprint
from loader.cli import app
from loader.config import PROJECT_ROOT
from loader.dbt_runner import COMPLETE_BUILD_ARGS, run_dbt
from tests.conftest import settings_for
from tests.pod_factory import KUBESPAWNER_7_POD, pod_list
from tests.test_usage_rules import project_with_rates

pytestmark = pytest.mark.dbt


def invoke(environment: dict[str, str], *args: str):
    result = CliRunner().invoke(app, list(args), env=environment)
    assert result.exit_code == 0, result.output
    return result


def build(environment: dict[str, str], **overrides: str) -> dict:
    return json.loads(invoke({**environment, **overrides}, "build", "--json").stdout)


def collect(environment: dict[str, str], folder, at: str) -> None:
    invoke(environment, "collect", "--from-file", str(folder / "pods.json"), "--at", at)


def relation_ids(conn: psycopg.Connection) -> dict[str, int]:
    """Each analytics relation's oid: a view or table re-created by a build gets a new one."""
    rows = conn.execute(
        "select c.relname, c.oid::bigint from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'analytics' and c.relkind in ('r', 'v')"
    ).fetchall()
    return dict(rows)


def declared_models() -> dict[str, str]:
    """Each model's materialization, read from the model files and dbt_project.yml (not from dbt's selection)."""
    project = yaml.safe_load((PROJECT_ROOT / "dbt_project" / "dbt_project.yml").read_text())
    defaults = {"": project["models"]["jupyterhub_metrics"]["+materialized"]}
    defaults["marts"] = project["models"]["jupyterhub_metrics"]["marts"]["+materialized"]
    models = {}
    for path in (PROJECT_ROOT / "dbt_project" / "models").rglob("*.sql"):
        text = path.read_text()
        folder = path.parent.name
        declared = next(
            (kind for kind in ("incremental", "table", "view") if f"materialized='{kind}'" in text),
            defaults.get(folder, defaults[""]),
        )
        models[path.stem] = declared
    return models


@pytest.fixture(scope="module")
def cycle(module_database, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cycle")
    (folder / "pods.json").write_text(json.dumps(pod_list(KUBESPAWNER_7_POD)))
    environment = {**module_database.environment(), "DBT_TARGET_PATH": str(folder / "target")}
    invoke(environment, "db", "migrate")
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
        yield environment, folder, conn


def test_after_a_complete_build_each_cycle_builds_only_what_follows_new_data(cycle):
    environment, folder, conn = cycle
    collect(environment, folder, "2026-11-03T09:00:00Z")
    first = build(environment)
    assert first["complete"] is True
    views_before = relation_ids(conn)

    collect(environment, folder, "2026-11-03T09:05:00Z")
    second = build(environment)
    assert second["complete"] is False and second["problems"] == []
    models = declared_models()
    # Tables of the rules or of seeds alone are not rebuilt either.
    unchanging_tables = {"rules_in_force", "int_term_days"}
    expected = {name for name, kind in models.items() if kind in ("incremental", "table")} - unchanging_tables
    assert second["statuses"] == {"success": len(expected) + 1}  # and the snapshot users_history
    after = relation_ids(conn)
    kept = {name for name, kind in models.items() if kind == "view"} | unchanging_tables | {"terms", "cost_rates"}
    assert all(after[name] == views_before[name] for name in kept), "the cycle re-created a view, seed or such table"
    # The new observation reached the marts: one session, extended to the second collection.
    assert conn.execute(
        "select count(*), max(session_end) = '2026-11-03T09:05:00Z' from analytics.user_sessions"
    ).fetchone() == (1, True)


def test_a_changed_rule_builds_everything_and_reports_it(cycle):
    environment, folder, _ = cycle
    build(environment)
    changed = build(environment, SESSION_GAP_MINUTES="45")
    assert changed["complete"] is True
    assert changed["rules_changed"] == {"session_gap_minutes": {"was": "60", "now": "45"}}
    back = build(environment)
    assert back["complete"] is True and build(environment)["complete"] is False


def test_a_plain_dbt_build_in_between_makes_the_next_build_complete(cycle, module_database):
    """A plain `dbt build` (the loader's fingerprint not given) may have used other files or rules."""
    environment, folder, conn = cycle
    build(environment)
    assert build(environment)["complete"] is False
    assert run_dbt(settings_for(module_database), COMPLETE_BUILD_ARGS)
    assert conn.execute("select count(*) from analytics.complete_build").fetchone()[0] == 0
    assert build(environment)["complete"] is True
    assert build(environment)["complete"] is False


def test_a_run_of_tables_alone_keeps_the_record_and_one_of_a_view_clears_it(cycle, module_database):
    """A run that selects only tables, incremental models or snapshots cannot change a view or seed."""
    environment, folder, conn = cycle
    settings = settings_for(module_database)
    build(environment)
    assert run_dbt(settings, ["run", "--select", "user_sessions", "users"])
    assert build(environment)["complete"] is False
    assert run_dbt(settings, ["run", "--select", "department_usage"])
    assert conn.execute("select count(*) from analytics.complete_build").fetchone()[0] == 0
    assert build(environment)["complete"] is True


def test_a_complete_build_refused_for_a_bad_seed_keeps_the_record_of_the_last_one(cycle, tmp_path):
    """It replaced nothing, so the marts are still those of the last complete build, and the next build of the
    project as it was is a cycle."""
    environment, folder, conn = cycle
    build(environment)
    recorded = conn.execute("select fingerprint from analytics.complete_build").fetchall()
    header = "valid_from,valid_to,gpu_model,gpu_hour,cpu_core_hour,memory_gib_hour,currency\n"
    overlapping = header + "2026-01-01,2026-07-01,,1,0.1,0.01,USD\n2026-06-01,2027-01-01,,2,0.1,0.01,USD\n"
    project = project_with_rates(tmp_path, overlapping)
    failed = CliRunner().invoke(app, ["build"], env={**environment, "DBT_PROJECT_DIR": str(project)})
    assert failed.exit_code == 1, failed.output
    assert len(recorded) == 1
    assert conn.execute("select fingerprint from analytics.complete_build").fetchall() == recorded
    assert build(environment)["complete"] is False


def test_a_complete_build_that_fails_midway_records_nothing(cycle, tmp_path):
    environment, folder, conn = cycle
    project = project_with_rates(
        tmp_path, "valid_from,valid_to,gpu_model,gpu_hour,cpu_core_hour,memory_gib_hour,currency\n"
    )
    model = project / "models" / "marts" / "department_usage.sql"
    model.write_text(model.read_text() + "\nwhere not_a_column is null\n")
    failed = CliRunner().invoke(app, ["build"], env={**environment, "DBT_PROJECT_DIR": str(project)})
    assert failed.exit_code == 1, failed.output
    assert conn.execute("select count(*) from analytics.complete_build").fetchone()[0] == 0
    assert build(environment)["complete"] is True


def test_the_fingerprint_follows_the_projects_files_and_the_variables_they_read(tmp_path):
    project = tmp_path / "dbt_project"
    shutil.copytree(PROJECT_ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs"))
    environment = {"SESSION_GAP_MINUTES": "60", "DB_PASSWORD": "secret"}
    original = project_fingerprint(project, environment)
    assert len(original) == 64
    # dbt's output, the connection and variables no file reads do not change what a build makes...
    (project / "target").mkdir()
    (project / "target" / "manifest.json").write_text("{}")
    (project / "profiles.yml").write_text("# another connection\n")
    assert project_fingerprint(project, {**environment, "DB_PASSWORD": "other", "UNRELATED": "1"}) == original
    # ...a rule's value, a model and a seed do.
    assert project_fingerprint(project, {**environment, "SESSION_GAP_MINUTES": "45"}) != original
    assert project_fingerprint(project, {"DB_PASSWORD": "secret"}) != original  # unset is a value too
    model = project / "models" / "marts" / "department_usage.sql"
    model.write_text(model.read_text() + "\n")
    edited = project_fingerprint(project, environment)
    assert edited != original
    (project / "seeds" / "terms.csv").write_text("name,starts_on,ends_on\n")
    assert project_fingerprint(project, environment) not in (original, edited)

"""A build that fails leaves the dashboards' relations as they were: an admin's bad seed is refused before anything
is replaced, in one line naming the file and its lines, and every analytics relation answers with the same rows."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from loader.cli import app
from loader.config import PROJECT_ROOT
from loader.demo import load_synthetic_hub
from loader.migrate import migrate
from tests.conftest import settings_for
from tests.dbt_helpers import dbt, every_relations_rows

pytestmark = pytest.mark.dbt

RATES = "valid_from,valid_to,gpu_model,gpu_hour,cpu_core_hour,memory_gib_hour,currency\n"
TERMS = "name,starts_on,ends_on\n"
# seed file -> its content -> what the one line of the error names
BAD_SEEDS = {
    "overlapping periods": (
        "cost_rates",
        RATES + "2000-01-01,2026-12-01,,1,0.1,0.01,USD\n2026-10-01,9999-12-31,,2,0.1,0.01,USD\n",
        "seeds/cost_rates.csv: lines 2 and 3: the periods 2000-01-01 to 2026-12-01 (any GPU model) and "
        "2026-10-01 to 9999-12-31 (any GPU model) overlap",
    ),
    "a period that ends before it begins": (
        "cost_rates",
        RATES + "2000-01-01,2026-01-01,,1,0.1,0.01,USD\n2026-07-01,2026-01-01,,1,0.1,0.01,USD\n",
        "seeds/cost_rates.csv: line 3: the period 2026-07-01 to 2026-01-01 (any GPU model) ends before it begins",
    ),
    "a negative price": (
        "cost_rates",
        RATES + "2000-01-01,9999-12-31,,-1,0.1,0.01,USD\n",
        "seeds/cost_rates.csv: line 2: a price is negative",
    ),
    "no currency": (
        "cost_rates",
        RATES + "2000-01-01,9999-12-31,,1,0.1,0.01,\n",
        "seeds/cost_rates.csv: line 2: no currency",
    ),
    "a date that is no date": (
        "cost_rates",
        RATES + "2000-01-01,2026-13-01,,1,0.1,0.01,USD\n",
        'cost_rates (error): date/time field value out of range: "2026-13-01"',
    ),
    "a term that ends before it begins": (
        "terms",
        TERMS + "Fall 2026,2026-08-24,2026-12-18\nSpring 2027,2027-05-15,2027-01-20\n",
        "seeds/terms.csv: line 3: Spring 2027 (2027-05-15 to 2027-01-20) ends before it begins",
    ),
    "two terms of one name": (
        "terms",
        TERMS + "Fall 2026,2026-08-24,2026-12-18\nFall 2026,2027-01-20,2027-05-15\n",
        "seeds/terms.csv: lines 2 and 3: two terms named Fall 2026",
    ),
    "a term with no name": (
        "terms",
        TERMS + ",2026-08-24,2026-12-18\n",
        "seeds/terms.csv: line 2: a term with no name",
    ),
}


@pytest.fixture(scope="module")
def built(module_database):
    """A small hub built by `jupyterhub-metrics build`, as the CronJob does, with the demo's example rates."""
    settings = settings_for(module_database)
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    load_synthetic_hub(settings, days=2, users=8, seed=3, end=end - timedelta(days=1))
    environment = {**module_database.environment(), "EXAMPLE_COST_RATES": "true"}
    result = CliRunner().invoke(app, ["build"], env=environment)
    assert result.exit_code == 0, result.output
    return settings, environment


def project_with(tmp_path, seed: str, content: str):
    copy = tmp_path / "dbt_project"
    shutil.copytree(PROJECT_ROOT / "dbt_project", copy, ignore=shutil.ignore_patterns("target", "logs"))
    (copy / "seeds" / f"{seed}.csv").write_text(content)
    return copy


def schemas(database) -> set[str]:
    with psycopg.connect(**database.connect_kwargs()) as conn:
        return {name for (name,) in conn.execute("select nspname from pg_namespace").fetchall()}


@pytest.mark.parametrize("case", list(BAD_SEEDS))
def test_a_bad_seed_fails_in_one_line_and_every_relation_answers_as_before(built, module_database, tmp_path, case):
    settings, environment = built
    seed, content, named = BAD_SEEDS[case]
    before = every_relations_rows(module_database, settings.analytics_schema)
    schemas_before = schemas(module_database)
    with psycopg.connect(**module_database.connect_kwargs()) as conn:
        recorded = conn.execute("select fingerprint from analytics.complete_build").fetchall()
    project = project_with(tmp_path, seed, content)
    environment = {**environment, "DBT_PROJECT_DIR": str(project), "DBT_TARGET_PATH": str(tmp_path / "target")}
    result = CliRunner().invoke(app, ["build"], env=environment)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and named in errors[0] and "nothing was built" in errors[0], result.output
    assert every_relations_rows(module_database, settings.analytics_schema) == before
    assert schemas(module_database) == schemas_before  # the seeds' own schema is gone again
    with psycopg.connect(**module_database.connect_kwargs()) as conn:
        assert conn.execute("select fingerprint from analytics.complete_build").fetchall() == recorded


def test_a_plain_dbt_seed_of_a_bad_file_leaves_the_table_as_it_was(built, module_database, tmp_path):
    """The check runs inside the transaction that loads the seed, so plain dbt refuses the file too."""
    settings, _ = built
    _, content, _ = BAD_SEEDS["overlapping periods"]
    query = "select * from analytics.example_cost_rates order by 1, 2, 3"
    with psycopg.connect(**module_database.connect_kwargs()) as conn:
        rows_before = conn.execute(query).fetchall()
    assert len(rows_before) == 4
    project = project_with(tmp_path, "example_cost_rates", content)
    with pytest.raises(AssertionError, match="dbt seed"):
        dbt(settings_for(module_database, dbt_project_dir=project), "seed", "--select", "example_cost_rates")
    with psycopg.connect(**module_database.connect_kwargs()) as conn:
        assert conn.execute(query).fetchall() == rows_before


def test_a_good_edit_of_a_seed_builds(built, module_database, tmp_path):
    """A rate for one GPU model beside one for any model, and terms that overlap, are no problems."""
    settings, environment = built
    project = project_with(
        tmp_path,
        "cost_rates",
        RATES + "2000-01-01,9999-12-31,,1,0.1,0.01,USD\n2000-01-01,9999-12-31,NVIDIA H100,3,0.1,0.01,USD\n",
    )
    (project / "seeds" / "terms.csv").write_text(
        TERMS + "Fall 2026,2026-08-24,2026-12-18\nFall A,2026-08-24,2026-10-15\n"
    )
    environment = {**environment, "DBT_PROJECT_DIR": str(project), "DBT_TARGET_PATH": str(tmp_path / "target")}
    result = CliRunner().invoke(app, ["build"], env=environment)
    assert result.exit_code == 0, result.output
    with psycopg.connect(**module_database.connect_kwargs()) as conn:
        assert conn.execute("select count(*) from analytics.terms").fetchone()[0] == 2

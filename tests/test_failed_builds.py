"""A build that fails never takes a dashboard down, and a build that runs never blanks one: an admin's bad seed is
refused before anything is replaced, in one line naming the file and its lines; a model that fails midway leaves
every analytics relation answering with the same rows; the read-only role reads every dashboard relation throughout
a full rebuild without an error. On plain PostgreSQL and on TimescaleDB."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from grafana.macros import expand
from loader.cli import app
from loader.config import PROJECT_ROOT
from loader.demo import load_synthetic_hub
from loader.migrate import migrate
from tests.conftest import settings_for
from tests.dbt_helpers import dbt, every_relations_rows
from tests.test_dashboards import all_scope_values, dashboard_panels, drop_role, make_reader

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module", params=["postgres", "timescaledb"])
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


RATES = "valid_from,valid_to,gpu_model,gpu_hour,cpu_core_hour,memory_gib_hour,currency\n"
TERMS = "name,starts_on,ends_on\n"
ALLOCATIONS = (
    "name,grantee_kind,grantee,resource,amount,term,starts_on,ends_on,first_warning_percent,second_warning_percent\n"
)
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
    # Allocations: checked as they load, and against the terms before anything reads them.
    "an allocation of a term there is not": (
        "allocations",
        ALLOCATIONS + "cs101 GPU,group,cs101,gpu_hours,100,Fall 2099,,,,\n",
        "seeds/allocations.csv: line 2: cs101 GPU names the term Fall 2099, which seeds/terms.csv does not have",
    ),
    "allocations that overlap through a term": (
        "allocations",
        ALLOCATIONS
        + "cs101 GPU,group,cs101,gpu_hours,100,Fall 2026,,,,\n"
        + "cs101 GPU extra,group,cs101,gpu_hours,20,,2026-12-01,2026-12-31,,\n",
        "seeds/allocations.csv: lines 2 and 3: cs101 GPU and cs101 GPU extra both grant group cs101 gpu_hours on the"
        " same days",
    ),
    "an allocation of nothing": (
        "allocations",
        ALLOCATIONS + "cs101 GPU,group,cs101,gpu_hours,0,,2026-09-01,2026-12-31,,\n",
        "seeds/allocations.csv: line 2: cs101 GPU grants 0; an amount must be a positive number",
    ),
    "an allocation of what is not a resource": (
        "allocations",
        ALLOCATIONS + "cs101 disk,group,cs101,disk_tb,5,,2026-09-01,2026-12-31,,\n",
        "seeds/allocations.csv: line 2: cs101 disk grants disk_tb; say gpu_hours, cpu_core_hours or storage_gb_months",
    ),
    "allocation thresholds out of order": (
        "allocations",
        ALLOCATIONS + "cs101 GPU,group,cs101,gpu_hours,100,,2026-09-01,2026-12-31,95,90\n",
        "seeds/allocations.csv: line 2: cs101 GPU warns at 95 and 90 percent",
    ),
}


def built_range() -> tuple[datetime, datetime]:
    """The days the module's hub covers."""
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    return end - timedelta(days=2), end


@pytest.fixture(scope="module")
def built(module_database):
    """A small hub built by `jupyterhub-metrics build`, as the CronJob does, with the demo's example rates."""
    settings = settings_for(module_database)
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
    load_synthetic_hub(settings, days=2, users=8, seed=3, end=built_range()[1])
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


# The seeds are checked in a schema of their own by dbt alone, whatever the engine: on plain PostgreSQL only.
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
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
    if case == "overlapping periods":  # and --json says that nothing was published
        as_json = CliRunner().invoke(app, ["build", "--json"], env=environment)
        document = json.loads(as_json.stdout.strip().splitlines()[-1])
        assert (document["status"], document["published"], document["stage"]) == ("failed", False, "seed check")
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
    # The project as it was, for the tests after this one.
    assert CliRunner().invoke(app, ["build"], env=built[1]).exit_code == 0


def broken_midway(tmp_path):
    """A copy of the project whose int_department_days (read by every department view) fails to build."""
    project = tmp_path / "dbt_project"
    shutil.copytree(PROJECT_ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs"))
    model = project / "models" / "intermediate" / "int_department_days.sql"
    model.write_text(model.read_text() + "\nwhere no_such_column is null\n")
    return project


@pytest.mark.parametrize("arguments", [["build"], ["build", "--full-refresh"]], ids=["complete", "full-refresh"])
def test_a_model_that_fails_midway_leaves_every_relation_answering_as_before(
    built, module_database, tmp_path, arguments
):
    """The views above what the build replaced before the failure still answer (they were dropped with what they
    read, and never re-created, when dbt's CASCADE had its way)."""
    settings, environment = built
    before = every_relations_rows(module_database, settings.analytics_schema)
    environment = {
        **environment,
        "DBT_PROJECT_DIR": str(broken_midway(tmp_path)),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
    }
    result = CliRunner().invoke(app, arguments, env=environment)
    assert result.exit_code == 1, result.output
    assert "int_department_days" in result.output and "no_such_column" in result.output
    after = every_relations_rows(module_database, settings.analytics_schema)
    assert sorted(after) == sorted(before)
    assert {name for name in before if after[name] != before[name]} == set()
    # And the next good build catches up.
    assert CliRunner().invoke(app, ["build"], env=built[1]).exit_code == 0


LEFTOVERS = (
    "select relname from pg_class where relnamespace = 'analytics'::regnamespace and relname ~ '__dbt_(backup|tmp)$'"
)


def relation_oids(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("select relname, oid::int from pg_class where relnamespace = 'analytics'::regnamespace"))


def swapped_relations(conn: psycopg.Connection, oids: dict[str, int]) -> int:
    """How many of the analytics relations a build has replaced (or left aside) so far, as any reader sees it."""
    return sum(1 for name, oid in relation_oids(conn).items() if oids.get(name) != oid)


# Killed early and late on plain PostgreSQL, once between on TimescaleDB: dbt replaces the marts alike on both.
@pytest.mark.parametrize(
    ("engine", "replaced"), [("postgres", 1), ("postgres", 30), ("timescaledb", 12)], indirect=["engine"]
)
def test_a_build_killed_midway_leaves_every_relation_answering_and_the_next_build_catches_up(
    built, module_database, replaced
):
    """The process killed (SIGKILL: no handler runs) once `replaced` relations were replaced, or the moment a
    replaced one is seen aside, which is between dbt's swap and its drop: every relation still answers with the
    same rows, and the next build, complete because of what was left aside, leaves nothing aside."""
    settings, environment = built
    before = every_relations_rows(module_database, settings.analytics_schema)
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as watcher:
        oids = relation_oids(watcher)
        build = subprocess.Popen(
            [sys.executable, "-m", "loader", "build", "--full-refresh"],
            env={**os.environ, **environment},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 300
            while build.poll() is None and time.monotonic() < deadline:
                if swapped_relations(watcher, oids) >= replaced or watcher.execute(LEFTOVERS).fetchone():
                    break
                time.sleep(0.005)
            assert build.poll() is None, "the build ended before it could be killed"
        finally:
            build.send_signal(signal.SIGKILL)
            build.wait()
        # Its sessions end as the server notices the closed socket; until then they may hold what they locked.
        while watcher.execute(
            "select count(*) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()"
            " and backend_type = 'client backend'"
        ).fetchone()[0]:
            time.sleep(0.05)
        left_aside = watcher.execute(LEFTOVERS).fetchall()
    after = every_relations_rows(module_database, settings.analytics_schema)
    assert {name for name in before if after.get(name) != before[name]} == set()
    result = CliRunner().invoke(app, ["build", "--json"], env=environment)
    assert result.exit_code == 0, result.output
    if left_aside:
        assert json.loads(result.stdout.strip().splitlines()[-1])["complete"] is True
    with psycopg.connect(**module_database.connect_kwargs()) as conn:
        assert conn.execute(LEFTOVERS).fetchall() == []
    assert every_relations_rows(module_database, settings.analytics_schema) == before


def test_a_statement_timeout_fails_the_build_and_every_relation_answers_as_before(built, module_database):
    """A server that ends the build's longest statements (statement_timeout, set for its sessions only)."""
    settings, environment = built
    before = every_relations_rows(module_database, settings.analytics_schema)
    timed_out = {**environment, "PGOPTIONS": "-c statement_timeout=25"}
    result = CliRunner().invoke(app, ["build", "--full-refresh", "--json"], env=timed_out)
    assert result.exit_code == 1, result.output
    assert "statement timeout" in result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["published"] is False
    # What a drop that timed out after its swap left aside still answers, and the relations read the same rows.
    after = every_relations_rows(module_database, settings.analytics_schema)
    assert {name for name in before if after.get(name) != before[name]} == set()
    assert CliRunner().invoke(app, ["build"], env=environment).exit_code == 0
    with psycopg.connect(**module_database.connect_kwargs()) as conn:
        assert conn.execute(LEFTOVERS).fetchall() == []
    assert every_relations_rows(module_database, settings.analytics_schema) == before


def builds_in_turn(environment: dict, outcome: dict) -> None:
    """A rebuild from all history, then two 5-minute cycles: what a reader may meet."""
    for arguments in (["build", "--full-refresh"], ["build"], ["build"]):
        result = CliRunner().invoke(app, arguments, env=environment)
        outcome.setdefault("results", []).append((arguments, result.exit_code, result.output[-2000:]))


def test_readers_never_miss_a_relation_during_a_full_rebuild_and_cycles(built, module_database):
    """As the read-only role, every dashboard panel's query runs in a loop while the marts are rebuilt from all
    history and two cycles follow: no error, and every answer equals the one before (same input, same rules, so
    the same numbers), as does a count of every relation the role may read."""
    settings, environment = built
    start, end = built_range()
    role = f"jhm_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
        params = make_reader(conn, settings, role)
    try:
        with psycopg.connect(autocommit=True, **params) as reader:
            relations = [
                name
                for (name,) in reader.execute(
                    "select table_name from information_schema.tables"
                    " where table_schema = %s and has_table_privilege(format('%%I.%%I', table_schema, table_name),"
                    " 'select') order by 1",
                    (settings.analytics_schema,),
                ).fetchall()
            ]
            assert len(relations) >= 10
            variables = {"user": "nobody@example.edu", **all_scope_values(reader)}
            queries = {
                name: expand(item["targets"][0]["rawSql"], start=start, end=end, interval="1h", variables=variables)
                for name, _, item in dashboard_panels()
            }
            queries.update(
                {
                    name: sql.SQL("select count(*) from {}")
                    .format(sql.Identifier(settings.analytics_schema, name))
                    .as_string(reader)
                    for name in relations
                }
            )
            assert len(queries) >= 60

            def answers() -> dict[str, list]:
                return {name: sorted(map(repr, reader.execute(query).fetchall())) for name, query in queries.items()}

            expected = answers()
            outcome: dict = {}
            builder = threading.Thread(target=builds_in_turn, args=({**environment, "READONLY_DB_USER": role}, outcome))
            errors, differing, rounds = [], set(), 0
            builder.start()
            while builder.is_alive() or not rounds:
                try:
                    seen = answers()
                except psycopg.Error as error:
                    errors.append(" ".join(str(error).split())[:200])
                    continue
                rounds += 1
                differing |= {name for name in queries if seen[name] != expected[name]}
            builder.join()
            assert [(arguments, code) for arguments, code, _ in outcome["results"]] == [
                (["build", "--full-refresh"], 0),
                (["build"], 0),
                (["build"], 0),
            ], outcome["results"]
            assert (errors[:3], sorted(differing)) == ([], [])
            assert rounds >= 3
    finally:
        with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
            drop_role(conn, role)


def test_check_notices_marts_that_no_build_has_caught_up_since_a_collection(built, module_database):
    """Builds that keep failing leave the dashboards answering with old numbers: `check` says so once a collection
    is more than two cycles old that no finished build has read, and passes again after one has."""
    settings, environment = built
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
        conn.execute(
            "insert into raw.collector_runs (kind, cluster, started_at, finished_at, observed_at, status)"
            " values ('collect', 'jhub-test', now() - interval '20 minutes', now() - interval '20 minutes',"
            " now() - interval '20 minutes', 'succeeded')"
        )
    stale = CliRunner().invoke(app, ["check", "--json"], env=environment)
    assert stale.exit_code == 3, stale.output
    assert "assert_marts_follow_collections" in stale.output
    published = CliRunner().invoke(app, ["build", "--json"], env=environment)
    assert published.exit_code == 0 and json.loads(published.stdout.strip().splitlines()[-1])["published"] is True
    caught_up = CliRunner().invoke(app, ["check"], env=environment)
    assert caught_up.exit_code == 0, caught_up.output

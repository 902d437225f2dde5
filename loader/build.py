"""The build after each collection and the daily check: dbt with the rules in force, outcomes for the CLI."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

import psycopg
import yaml
from psycopg import sql

from loader.config import Settings
from loader.db import connect
from loader.dbt_runner import (
    CHECK_FRESHNESS_ARGS,
    CHECK_TEST_ARGS,
    COMPLETE_BUILD_ARGS,
    CYCLE_ARGS,
    DbtOutcome,
    build_lock,
    run_dbt,
    target_dir,
)
from loader.errors import BuildFailed, ChecksFailed

RULES_VERSION = "rules_version"
# The loader gives dbt the fingerprint of what it builds; dbt records it when a build ends complete
# (dbt_project/macros/complete_build_state.sql).
FINGERPRINT_VARIABLE = "JHM_PROJECT_FINGERPRINT"
# Not part of what a build makes: dbt's own output, local files, and the connection (whose password must not be
# hashed into a row of the database).
UNBUILT_PROJECT_PATHS = ("target", "logs", "dbt_packages", ".user.yml", "profiles.yml")
# Before a complete build, the admins' seeds are loaded into a schema of their own, where each runs the check it
# runs as it loads (dbt_project/macros/assert_seeds_valid.sql), and the allocations are checked against the terms
# (int_allocations, whose pre-hook checks them, and the terms' table it reads): a bad file then stops the build
# before anything is replaced. The schema is dropped after; its name is the analytics schema's with this suffix.
SEED_CHECK_SUFFIX = "__seed_check"
SEED_CHECK_ARGS = [
    "build",
    "--select",
    "resource_type:seed",
    "int_terms",
    "int_allocations",
    "--full-refresh",
    "--no-write-json",
]
REFERENCED_VARIABLE = re.compile(r"""env_var\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]""")


@dataclass
class BuildResult:
    outcome: DbtOutcome
    full_refresh: bool
    # rule -> (value in the last build, value now), for rules whose value changed without a full rebuild
    rules_changed: dict[str, tuple[str, str]] = field(default_factory=dict)
    # the rules version the marts were built with, when this build rebuilt them for a new one
    rebuilt_from_version: str | None = None
    # every model, seed and snapshot (first build, changed files or rules), not only the cycle selector
    complete: bool = True

    def summary(self) -> dict[str, object]:
        return {
            "command": "build",
            "status": "succeeded",
            # every node built: the dashboards read this build's numbers
            "published": True,
            "full_refresh": self.full_refresh,
            "complete": self.complete,
            "rebuilt_from_rules_version": self.rebuilt_from_version,
            "rules_changed": {rule: {"was": old, "now": new} for rule, (old, new) in self.rules_changed.items()},
            **self.outcome.summary(),
        }


@dataclass
class FailedBuild:
    """How far a failed build got. Nothing it did not reach was replaced, and every relation still answers (the
    docs block readers_during_builds); `stage` is `seed check` when a bad seed stopped it before anything ran."""

    outcome: DbtOutcome
    stage: str

    def summary(self) -> dict[str, object]:
        return {"published": False, "stage": self.stage, **self.outcome.summary()}


@dataclass
class CheckResult:
    tests: DbtOutcome
    freshness: DbtOutcome

    def summary(self) -> dict[str, object]:
        passed = self.tests.success and self.freshness.success
        return {
            "command": "check",
            "status": "succeeded" if passed else "failed",
            "tests": self.tests.summary(),
            "freshness": self.freshness.summary(),
        }


def _analytics_rows(settings: Settings, table: str, *columns: str) -> list[tuple]:
    """The rows of a table the builds keep in the analytics schema; none before the build that makes it."""
    try:
        with connect(settings.database) as conn:
            return conn.execute(
                sql.SQL("select {} from {}.{}").format(
                    sql.SQL(", ").join(map(sql.Identifier, columns)),
                    sql.Identifier(settings.analytics_schema),
                    sql.Identifier(table),
                )
            ).fetchall()
    except psycopg.errors.UndefinedTable:
        return []


def rules_in_force(settings: Settings) -> dict[str, str]:
    """The rules the last build ran with (the rules_in_force mart); empty before the first build."""
    return dict(_analytics_rows(settings, "rules_in_force", "rule", "value"))


def project_rules_version(settings: Settings) -> str:
    project = yaml.safe_load((settings.dbt_project_dir / "dbt_project.yml").read_text(encoding="utf-8"))
    return str(project["vars"][RULES_VERSION])


def project_fingerprint(project_dir: Path, environment: Mapping[str, str]) -> str:
    """What a complete build makes depends on: the dbt and adapter versions, the project's files, and the value of
    every environment variable those files read (the rules, the schemas, the reader role)."""
    digest = hashlib.sha256()
    for package in ("dbt-core", "dbt-postgres"):
        digest.update(f"{package}={metadata.version(package)}\n".encode())
    referenced: set[str] = set()
    for path in sorted(project_dir.rglob("*")):
        relative = path.relative_to(project_dir)
        if not path.is_file() or relative.parts[0] in UNBUILT_PROJECT_PATHS:
            continue
        content = path.read_bytes()
        digest.update(f"{relative.as_posix()}\0{len(content)}\0".encode())
        digest.update(content)
        referenced.update(REFERENCED_VARIABLE.findall(content.decode("utf-8", errors="replace")))
    for name in sorted(referenced):
        digest.update(f"{name}={environment.get(name)!r}\n".encode())
    return digest.hexdigest()


def completely_built(settings: Settings) -> str | None:
    """The fingerprint of the last complete build, unless a dbt run of a view or seed followed it."""
    rows = _analytics_rows(settings, "complete_build", "fingerprint")
    return rows[0][0] if rows else None


def analyze_tables(settings: Settings) -> None:
    """Statistics for the tables a build made from all history: the dashboards' plans depend on them, and until
    autovacuum gets to a new table (never, where it is off) the planner guesses its size and picks nested loops."""
    with connect(settings.database) as conn:
        tables = conn.execute(
            "select tablename from pg_tables where schemaname = %s order by tablename", (settings.analytics_schema,)
        ).fetchall()
        for (table,) in tables:
            conn.execute(
                sql.SQL("analyze {}.{}").format(sql.Identifier(settings.analytics_schema), sql.Identifier(table))
            )


def left_by_an_interrupted_build(settings: Settings) -> list[str]:
    """The old or new relations a build killed between dbt's swap and its drop left behind (`x__dbt_backup`, whose
    dependent views still read it, or `x__dbt_tmp`). Everything answers meanwhile; a complete build then replaces
    each model, which drops them and points their readers at the current relations again."""
    with connect(settings.database) as conn:
        rows = conn.execute(
            "select relname from pg_class where relnamespace = to_regnamespace(%s)"
            " and relkind in ('r', 'v', 'm', 'p', 'f') and (relname like '%%\\_\\_dbt\\_backup'"
            " or relname like '%%\\_\\_dbt\\_tmp') order by relname",
            (settings.analytics_schema,),
        ).fetchall()
    return [name for (name,) in rows]


def check_seeds(settings: Settings, *, output_to_stderr: bool = False) -> None:
    """Every seed loaded and checked in a schema of its own (under the build lock, so two builds never share it),
    then the schema dropped. BuildFailed, naming the file and its lines, when one is bad."""
    aside = replace(
        settings, analytics_schema=settings.analytics_schema[: 63 - len(SEED_CHECK_SUFFIX)] + SEED_CHECK_SUFFIX
    )
    drop = sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(aside.analytics_schema))
    with build_lock(settings):
        with connect(settings.database, autocommit=True) as conn:
            conn.execute(drop)
        try:
            outcome = run_dbt(
                aside,
                SEED_CHECK_ARGS,
                output_to_stderr=output_to_stderr,
                # Its own artifacts: dbt parses a project again in full when the profile's schema changes.
                environment={"DBT_TARGET_PATH": str(target_dir(settings) / "seed-check")},
                lock_held=True,
            )
        finally:
            with connect(settings.database, autocommit=True) as conn:
                conn.execute(drop)
    if not outcome:
        raise BuildFailed(
            f"{outcome.first_problem()}; nothing was built, the marts are as they were",
            result=FailedBuild(outcome, "seed check"),
        )


def build(settings: Settings, *, full_refresh: bool = False, output_to_stderr: bool = False) -> BuildResult:
    """dbt build of models, seeds and snapshots: all of them when the project's files or rules differ from the last
    complete build's, else the `cycle` selector (what follows new data). Marts built under another rules version (an
    upgrade) are rebuilt from all history, once; a rule changed by a setting is reported, and applied to history by
    --full-refresh."""
    before = rules_in_force(settings)
    built_version = before.get(RULES_VERSION)
    rebuild = bool(built_version) and built_version != project_rules_version(settings)
    fingerprint = project_fingerprint(settings.dbt_project_dir, {**os.environ, **settings.dbt_environment()})
    complete = (
        full_refresh
        or rebuild
        or not before
        or completely_built(settings) != fingerprint
        or bool(left_by_an_interrupted_build(settings))
    )
    if complete:
        check_seeds(settings, output_to_stderr=output_to_stderr)
    outcome = run_dbt(
        settings,
        COMPLETE_BUILD_ARGS
        + (["--full-refresh"] if full_refresh or rebuild else [])
        + ([] if complete else CYCLE_ARGS),
        output_to_stderr=output_to_stderr,
        environment={FINGERPRINT_VARIABLE: fingerprint},
    )
    if not outcome:
        raise BuildFailed(outcome.first_problem(), result=FailedBuild(outcome, "build"))
    if full_refresh or rebuild or not before:
        analyze_tables(settings)
    after = rules_in_force(settings)
    changed = {
        rule: (before[rule], value)
        for rule, value in after.items()
        if rule != RULES_VERSION and before.get(rule, value) != value
    }
    return BuildResult(
        outcome,
        full_refresh or rebuild,
        {} if full_refresh or rebuild else changed,
        built_version if rebuild else None,
        complete,
    )


def check(settings: Settings, *, output_to_stderr: bool = False) -> CheckResult:
    """Every data test, then source freshness. ChecksFailed (exit code 3) when a test fails or a source is stale."""
    connect(settings.database).close()  # an unreachable database is a failure to run (1), not a failed check (3)
    result = CheckResult(
        run_dbt(settings, CHECK_TEST_ARGS, output_to_stderr=output_to_stderr),
        run_dbt(settings, CHECK_FRESHNESS_ARGS, output_to_stderr=output_to_stderr),
    )
    failed = [
        (name, outcome) for name, outcome in (("data tests", result.tests), ("source freshness", result.freshness))
    ]
    failed = [(name, outcome) for name, outcome in failed if not outcome]
    if failed:
        named = "; ".join(
            f"{name}: "
            + ", ".join(f"{node} ({status})" for node, status, _ in outcome.problems[:5])
            + (f" and {len(outcome.problems) - 5} more" if len(outcome.problems) > 5 else "")
            for name, outcome in failed
        )
        raise ChecksFailed(f"check failed: {named}; dbt's output above says why", result=result)
    return result

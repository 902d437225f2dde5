"""Facts the project declares once, and every place that repeats them tested against the declaration."""

from __future__ import annotations

import re

import yaml

from loader.config import PROJECT_ROOT
from loader.raw_store import RunKind

DBT_PROJECT = PROJECT_ROOT / "dbt_project"


def dbt_project_vars() -> dict:
    return yaml.safe_load((DBT_PROJECT / "dbt_project.yml").read_text())["vars"]


def test_run_kinds_are_the_loaders_in_dbt_the_trigger_and_the_docs():
    declared = [kind.value for kind in RunKind]
    assert dbt_project_vars()["run_kinds"] == declared
    staging = (DBT_PROJECT / "models" / "staging" / "_staging__models.yml").read_text()
    assert "values: \"{{ var('run_kinds') }}\"" in staging
    trigger = (PROJECT_ROOT / "bootstrap_sql" / "0004_runs_for_other_writers.sql").read_text()
    assert re.findall(r"values \('(\w+)', now\(\)", trigger) == [RunKind.EXTERNAL.value]
    sources = (DBT_PROJECT / "models" / "staging" / "_sources.yml").read_text()
    kind_column = sources.split("- name: kind", 1)[1].split("- name:", 1)[0]
    assert all(f"`{kind}`" in kind_column for kind in declared)

"""Facts the project declares once, and every place that repeats them tested against the declaration."""

from __future__ import annotations

import re

import yaml

from loader.config import PROJECT_ROOT
from loader.raw_store import RunKind

DBT_PROJECT = PROJECT_ROOT / "dbt_project"


def dbt_project_vars() -> dict:
    return yaml.safe_load((DBT_PROJECT / "dbt_project.yml").read_text())["vars"]


def test_run_kinds_are_the_loaders_in_dbt_the_default_and_the_docs():
    declared = [kind.value for kind in RunKind]
    assert dbt_project_vars()["run_kinds"] == declared
    staging = (DBT_PROJECT / "models" / "staging" / "_staging__models.yml").read_text()
    assert "values: \"{{ var('run_kinds') }}\"" in staging
    for writer in ("0004_runs_for_other_writers.sql", "0010_runs_for_other_writers_by_default.sql"):
        text = (PROJECT_ROOT / "bootstrap_sql" / writer).read_text()
        assert re.findall(r"values \('(\w+)', now\(\)", text) == [RunKind.EXTERNAL.value]
    sources = (DBT_PROJECT / "models" / "staging" / "_sources.yml").read_text()
    kind_column = sources.split("- name: kind", 1)[1].split("- name:", 1)[0]
    assert all(f"`{kind}`" in kind_column for kind in declared)


def test_every_field_of_the_settings_is_filled_from_a_declaration():
    from dataclasses import fields

    from loader.config import (
        SETTINGS,
        CollectSettings,
        DatabaseSettings,
        GraphSettings,
        HubSettings,
        PrometheusSettings,
        Settings,
        declared_default,
    )

    targets = {setting.target for setting in SETTINGS if setting.target}
    # Not settings: the sections themselves, the rules (the Rules group as a whole), and two fixed retry bounds.
    not_declared = {"database", "collect", "graph", "prometheus", "hub", "rules", "collect.attempts"}
    not_declared.add("graph.max_retry_wait_seconds")
    sections = (("", Settings), ("database.", DatabaseSettings), ("collect.", CollectSettings))
    for section, cls in (*sections, ("prometheus.", PrometheusSettings), ("hub.", HubSettings)):
        for item in fields(cls):
            name = section + item.name
            if name in not_declared:
                continue
            assert name in targets, f"{name} has no declaration in SETTINGS"
            assert item.default == declared_default(name), name
    for item in fields(GraphSettings):
        name = "graph." + item.name
        assert name in targets or name in not_declared, name


def test_every_fallback_in_the_dbt_project_is_the_declared_default():
    from loader.config import DECLARED

    texts = [path.read_text() for path in DBT_PROJECT.rglob("*.yml") if "target" not in path.parts]
    texts.append((PROJECT_ROOT / "profiles.example.yml").read_text())
    fallbacks = [match for text in texts for match in re.findall(r"env_var\('([A-Z_]+)', '([^']*)'\)", text)]
    assert len(fallbacks) > 15
    for name, default in fallbacks:
        if name in DECLARED:
            assert default == DECLARED[name].default, f"env_var('{name}', '{default}')"


def test_the_charts_defaults_are_the_declared_ones():
    """What the chart sets from its values, with no value overridden, is what the loader would use without it,
    except where the chart deploys something of its own (the database it runs, its paths in the image)."""
    import pytest

    from loader.config import DECLARED
    from tests.test_chart import HELM, by_kind, render

    if HELM is None:
        pytest.skip("helm is installed by `make venv`")
    chart_own = {"DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_SSLMODE", "BOOTSTRAP_SQL_DIR", "DBT_PROJECT_DIR"}
    compared = 0
    for cronjob in by_kind(render(), "CronJob"):
        for variable in cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]:
            name, value = variable["name"], variable.get("value")
            if name in DECLARED and value is not None and name not in chart_own:
                assert value == DECLARED[name].default, f"chart sets {name}={value!r}"
                compared += 1
    assert compared >= 10

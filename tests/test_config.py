"""One declaration per setting: the loader, .env.example and the README agree; typos are reported."""

from __future__ import annotations

import logging

import pytest

from loader.config import PROJECT_ROOT, SETTINGS, load_settings, render_env_example, unknown_variable_warnings
from loader.errors import ConfigurationError


def test_env_example_is_rendered_from_the_declaration():
    assert (PROJECT_ROOT / ".env.example").read_text() == render_env_example(), "run `python -m loader.config`"


def test_readme_names_every_setting():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert [setting.name for setting in SETTINGS if f"`{setting.name}`" not in readme] == []


def test_typos_get_the_closest_known_name():
    warnings = unknown_variable_warnings(
        {
            "DB_HSOT",
            "COLLECT_EMAIL_DOMIAN",
            "DB_HOST",
            "DBT_PROFILES_DIR",
            "DBT_PARTIAL_PARSE",
            "DBT_SCEMA",
            "AZURE_WHATEVER",
            "HOME",
        }
    )
    assert warnings == [
        "unknown setting AZURE_WHATEVER is ignored; no setting has that name",
        "unknown setting COLLECT_EMAIL_DOMIAN is ignored; did you mean COLLECT_EMAIL_DOMAIN?",
        "unknown setting DBT_SCEMA is ignored; did you mean DBT_SCHEMA?",
        "unknown setting DB_HSOT is ignored; did you mean DB_HOST?",
    ]


def test_loading_reports_typos_from_env_and_dotenv(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("COLLECT_EMAIL_DOMIAN=example.edu\n")
    with caplog.at_level(logging.WARNING):
        settings = load_settings({"DB_HSOT": "db.example.edu"})
    assert settings.database.host == "127.0.0.1" and settings.collect.email_domain is None
    assert "did you mean DB_HOST?" in caplog.text and "did you mean COLLECT_EMAIL_DOMAIN?" in caplog.text


def test_defaults_come_from_the_declaration():
    settings = load_settings({})
    declared = {setting.name: setting.default for setting in SETTINGS}
    assert settings.database.port == int(declared["DB_PORT"])
    assert ",".join(settings.collect.user_sources) == declared["COLLECT_USER_FROM"]
    assert settings.build_lock_wait_seconds == float(declared["DBT_LOCK_WAIT_SECONDS"])


def test_bad_values_are_one_line_errors():
    with pytest.raises(ConfigurationError, match="DB_PORT"):
        load_settings({"DB_PORT": "five"})


def test_dbt_project_defaults_are_the_declared_ones():
    """The dbt variables read the rule settings from the environment; their fallbacks must be the declared defaults."""
    import re

    text = (PROJECT_ROOT / "dbt_project" / "dbt_project.yml").read_text()
    fallbacks = dict(re.findall(r"env_var\('([A-Z_]+)', '([^']*)'\)", text))
    declared = {setting.name: setting.default for setting in SETTINGS if setting.group == "Rules"}
    assert {name: fallbacks[name] for name in declared} == declared
    assert dict(load_settings({"SESSION_GAP_MINUTES": "45"}).dbt_environment())["SESSION_GAP_MINUTES"] == "45"

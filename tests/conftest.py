"""Every test that touches PostgreSQL gets a fresh database and drops it afterwards.

The server is the one DB_* points at, or an embedded PostgreSQL under .local/ when DB_HOST is unset.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import replace

import psycopg
import pytest
from psycopg import sql

from loader.config import PROJECT_ROOT, DatabaseSettings, Settings, load_settings

TEST_SERVER_FOLDER = PROJECT_ROOT / ".local" / "test-postgres"


@pytest.fixture(scope="session")
def admin_database() -> DatabaseSettings:
    if os.environ.get("DB_HOST"):
        return replace(load_settings().database, name=os.environ.get("DB_ADMIN_DATABASE", "postgres"))
    from loader.embedded import local_server

    return local_server(TEST_SERVER_FOLDER)


def _create_database(admin: DatabaseSettings) -> DatabaseSettings:
    name = f"jhm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(autocommit=True, **admin.connect_kwargs()) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return replace(admin, name=name)


def _drop_database(admin: DatabaseSettings, database: DatabaseSettings) -> None:
    with psycopg.connect(autocommit=True, **admin.connect_kwargs()) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database.name)))


@pytest.fixture
def database(admin_database: DatabaseSettings):
    created = _create_database(admin_database)
    yield created
    _drop_database(admin_database, created)


@pytest.fixture(scope="module")
def module_database(admin_database: DatabaseSettings):
    """For expensive set-ups (a dbt build) shared by the tests of one module."""
    created = _create_database(admin_database)
    yield created
    _drop_database(admin_database, created)


def settings_for(database: DatabaseSettings, **overrides) -> Settings:
    base = load_settings({})
    return replace(base.with_database(database), **overrides)


@pytest.fixture
def settings(database: DatabaseSettings) -> Settings:
    return settings_for(database)


@pytest.fixture
def conn(database: DatabaseSettings):
    with psycopg.connect(**database.connect_kwargs()) as connection:
        yield connection


@pytest.fixture
def migrated(database: DatabaseSettings) -> Settings:
    """A fresh database with the raw schema; its settings."""
    from loader.migrate import migrate

    settings = settings_for(database)
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as connection:
        migrate(connection, settings.raw_schema, settings.bootstrap_sql_dir)
    return settings


def needs(available: bool, hint: str) -> pytest.MarkDecorator:
    """Skip a test whose real component is not installed here, with how to install it; in CI (CI=true), which
    installs every component, run it anyway so that a missing one fails rather than passes unseen."""
    return pytest.mark.skipif(not available and os.environ.get("CI") != "true", reason=hint)

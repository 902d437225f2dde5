"""Every test that touches PostgreSQL gets a fresh database and drops it afterwards.

The server is the one DB_* points at, or an embedded PostgreSQL under .local/ when DB_HOST is unset. Tests run in
parallel (pytest-xdist, one process per core): each worker has its own dbt target and log folders, so that two
in-process dbt runs never write the same manifest.
"""

from __future__ import annotations

import fcntl
import gc
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import psycopg
import pytest

from loader.config import PROJECT_ROOT, DatabaseSettings, Settings, load_settings
from stand_ins import engines

TEST_SERVER_FOLDER = PROJECT_ROOT / ".local" / "test-postgres"


def pytest_configure(config: pytest.Config) -> None:
    # xdist names the worker in config.workerinput (PYTEST_XDIST_WORKER is not set yet when this module loads).
    # The workers inherit the environment of the controller, which set the folders for "main" first: those are
    # replaced, a folder the user set is kept.
    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    for variable, folder in (("DBT_TARGET_PATH", "target"), ("DBT_LOG_PATH", "logs")):
        if os.environ.get(variable) in (None, str(PROJECT_ROOT / ".local" / "test-dbt" / "main" / folder)):
            os.environ[variable] = str(PROJECT_ROOT / ".local" / "test-dbt" / worker / folder)
    # One name for this run of pytest, which its workers inherit: the databases' names start with it.
    os.environ.setdefault("JHM_TEST_RUN", uuid.uuid4().hex[:6])
    for folder in (PROJECT_ROOT / ".local" / "test-dbt" / worker / "databases").glob("*"):
        if not folder.name.startswith(os.environ["JHM_TEST_RUN"]) and folder.stat().st_mtime < time.time() - 3600:
            shutil.rmtree(folder, ignore_errors=True)
    # dbt and what it imports are some 200,000 objects that live as long as the worker; Python's full collections,
    # which the many objects of each dbt call set off, traversed them all each time (over a tenth of a worker's
    # time). Frozen, they are not traversed; whatever is created later is collected as usual.
    import dbt.cli.main  # noqa: F401

    gc.collect()
    gc.freeze()


# A test database's name is taken again, once dropped, by a later test of the same worker and server, and dbt keeps
# its artifacts per name: dbt parses the project again in full (5 s here) whenever the database it connects to
# changes, and only what changed (0.4 s) when it is the one of the last run. Names: run, worker, slot.
_slots_in_use: dict[tuple[str, int], set[int]] = {}


@contextmanager
def _test_database(server: engines.DatabaseServer) -> Iterator[DatabaseSettings]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    in_use = _slots_in_use.setdefault((server.admin.host, server.admin.port), set())
    slot = min(set(range(len(in_use) + 1)) - in_use)
    in_use.add(slot)
    name = f"jhm_test_{os.environ['JHM_TEST_RUN']}_{worker}_{slot}"
    target = PROJECT_ROOT / ".local" / "test-dbt" / worker / "databases" / f"{name}_{server.admin.port}"
    saved = os.environ.get("DBT_TARGET_PATH")
    try:
        created = server.create_database(name)
        os.environ["DBT_TARGET_PATH"] = str(target)
        try:
            yield created
        finally:
            server.drop_database(created)
    finally:
        in_use.discard(slot)
        if saved is None:
            os.environ.pop("DBT_TARGET_PATH", None)
        else:
            os.environ["DBT_TARGET_PATH"] = saved


@pytest.fixture(scope="session")
def admin_database() -> DatabaseSettings:
    if os.environ.get("DB_HOST"):
        return replace(load_settings().database, name=os.environ.get("DB_ADMIN_DATABASE", "postgres"))
    from loader.embedded import local_server

    # One server for every worker: the first to arrive starts it, the others wait and reuse it.
    TEST_SERVER_FOLDER.parent.mkdir(parents=True, exist_ok=True)
    with (TEST_SERVER_FOLDER.parent / "test-postgres.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return local_server(TEST_SERVER_FOLDER)


def _create_database(admin: DatabaseSettings) -> DatabaseSettings:
    return engines.DatabaseServer(admin, "postgres").create_database()


def _drop_database(admin: DatabaseSettings, database: DatabaseSettings) -> None:
    engines.DatabaseServer(admin, "postgres").drop_database(database)


# The engines the product supports (spec 3.2), as the tests name them: the machine's PostgreSQL, and real TimescaleDB
# and Citus servers from the engines kit (stand_ins/engines.py) in the chart's flavour. A test module runs on others
# with `pytestmark = pytest.mark.parametrize("engine", ENGINES, indirect=True)`.
ENGINES = ("postgres", "timescaledb", "citus")
# Kit servers for particular cases: TimescaleDB's last release for PostgreSQL 15, and the package installed but
# never added to shared_preload_libraries.
KIT_SERVERS = {
    "timescaledb": lambda: engines.timescaledb_server(engines.CHART_FLAVOUR),
    "timescaledb-15": lambda: engines.timescaledb_server(engines.FLAVOURS[15]),
    "timescaledb-not-preloaded": lambda: engines.timescaledb_server(engines.CHART_FLAVOUR, preload=""),
    "citus": lambda: engines.citus_cluster(engines.CHART_FLAVOUR),
    "citus-15": lambda: engines.citus_cluster(engines.FLAVOURS[15]),
}


class EngineServers:
    """Servers by engine name, started the first time a test asks and stopped when the session ends."""

    def __init__(self, admin: DatabaseSettings) -> None:
        self.started: dict[str, engines.DatabaseServer] = {"postgres": engines.DatabaseServer(admin, "postgres")}
        self.unavailable: dict[str, str] = {}

    def get(self, engine: str) -> engines.DatabaseServer:
        if engine not in self.started and engine not in self.unavailable:
            try:
                self.started[engine] = KIT_SERVERS[engine]()
            except RuntimeError as error:
                self.unavailable[engine] = str(error)
        if engine in self.unavailable:
            reason = f"{engine}: {self.unavailable[engine]}"
            # CI builds the kit (.ci/run): there a missing engine fails instead of passing unseen.
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
        return self.started[engine]

    def stop(self) -> None:
        for server in self.started.values():
            server.stop()


@pytest.fixture(scope="session")
def engine_servers(admin_database: DatabaseSettings):
    servers = EngineServers(admin_database)
    yield servers
    servers.stop()


@pytest.fixture(scope="module")
def engine(request: pytest.FixtureRequest) -> str:
    """The engine a test module runs on: plain PostgreSQL unless parametrized (indirectly) with others."""
    return getattr(request, "param", "postgres")


@pytest.fixture(scope="module")
def database_server(engine: str, engine_servers: EngineServers) -> engines.DatabaseServer:
    return engine_servers.get(engine)


@pytest.fixture
def database(database_server: engines.DatabaseServer):
    with _test_database(database_server) as created:
        yield created


@pytest.fixture(scope="module")
def module_database(database_server: engines.DatabaseServer):
    """For expensive set-ups (a dbt build) shared by the tests of one module."""
    with _test_database(database_server) as created:
        yield created


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

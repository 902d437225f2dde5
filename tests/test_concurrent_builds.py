"""`build` and `check` take a database advisory lock: a CronJob's and a person's can overlap safely."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from loader.config import PROJECT_ROOT
from loader.dbt_runner import BUILD_LOCK_KEY
from loader.migrate import migrate
from tests.conftest import settings_for
from tests.dbt_helpers import dbt, load_batch
from tests.test_dbt_project import known_observations

pytestmark = pytest.mark.dbt


def cli(database, *args, **extra_env):
    environment = {**os.environ, **database.environment(), **extra_env}
    return subprocess.Popen(
        [sys.executable, "-m", "loader", *args],
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_builds_at_once_both_succeed_and_equal_a_full_refresh(database, tmp_path):
    settings = settings_for(database)
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        load_batch(conn, settings, known_observations())
        # Separate target folders, as two pods (or a pod and a laptop) have.
        first = cli(database, "build", DBT_TARGET_PATH=str(tmp_path / "a"))
        second = cli(database, "build", DBT_TARGET_PATH=str(tmp_path / "b"))
        outputs = [process.communicate(timeout=300)[0] for process in (first, second)]
        assert [first.returncode, second.returncode] == [0, 0], outputs
        built = conn.execute("select * from analytics.user_sessions order by session_id").fetchall()
        # Downstream too: a full refresh replaces the table, and dbt drops the views over the old one with it.
        dbt(settings, "build", "--select", "user_sessions+", "--full-refresh")
        assert conn.execute("select * from analytics.user_sessions order by session_id").fetchall() == built


def test_a_build_that_waits_too_long_says_so_in_one_line(database):
    settings = settings_for(database)
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        conn.execute("select pg_advisory_lock(%s)", (BUILD_LOCK_KEY,))
        waiting = cli(database, "build", DBT_LOCK_WAIT_SECONDS="2")
        output = waiting.communicate(timeout=120)[0]
    assert waiting.returncode == 1
    assert output.strip().splitlines()[-1].startswith("Error: another build or check has been running")

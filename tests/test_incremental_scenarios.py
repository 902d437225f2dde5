"""The incremental paths of the session models, scenario by scenario, through the real write path and dbt: an
open session extended from its stored row, a late observation that merges two sessions, a new pod uid, and
extending rows without a uid. Each scenario is one user; all share one database and one series of builds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from loader.migrate import migrate
from tests.conftest import settings_for
from tests.dbt_helpers import copy_without_run_id, dbt, load_batch, observation

pytestmark = pytest.mark.dbt

T = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
MODELS = ["+user_sessions", "int_session_day_parts", "session_days"]


def at(hours: float, minutes: int = 0) -> datetime:
    return T + timedelta(hours=hours, minutes=minutes)


def stored(user: str, times: list[datetime], uid: str = "u1"):
    return [
        observation(f"{user}@x.edu", "p", "cpu-1", moment, pod_uid=uid, user_name=f"{user} name") for moment in times
    ]


@pytest.fixture(scope="module")
def scenarios(module_database):
    settings = settings_for(module_database)
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        # Two stored sessions per user: 08:00-08:05 and 10:00-10:30.
        first = [at(0), at(0, 5), at(2), at(2, 30)]
        for user in ("extend", "late", "uid", "nouid"):
            load_batch(conn, settings, stored(user, first))
        # split: 08:00 and 08:05 from pod u1, then 08:10 and 08:15 without a uid (another writer): one session.
        load_batch(conn, settings, stored("split", [at(0), at(0, 5)]))
        load_batch(conn, settings, stored("split", [at(0, 10), at(0, 15)], uid=None))
        dbt(settings, "run", "--select", *MODELS)
        # extend: 11:15 continues the 10:00 session (45 minutes after it, same image and uid).
        load_batch(conn, settings, stored("extend", [at(3, 15)]))
        # late: 09:00 arrives late, between the two sessions, and merges them.
        load_batch(conn, settings, stored("late", [at(1)]))
        # uid: 10:35 right after the open session, but another pod (uid u2).
        load_batch(conn, settings, stored("uid", [at(2, 35)], uid="u2"))
        # nouid: 10:35 from another writer, without uid or name.
        row = observation("nouid@x.edu", "p", "cpu-1", at(2, 35), pod_uid=None, user_name=None)
        copy_without_run_id(conn, settings, [row])
        # split: 08:07 arrives late from pod u2: the session splits into 08:00-08:05 (u1) and 08:07-08:15 (u2).
        load_batch(conn, settings, stored("split", [at(0, 7)], uid="u2"))
        dbt(settings, "run", "--select", *MODELS)
        yield conn


def sessions(conn, user: str) -> list[tuple]:
    return conn.execute(
        "select session_start, session_end, observation_count, pod_uid, user_name, runtime_hours"
        " from analytics.user_sessions where user_email = %s order by session_start",
        (f"{user}@x.edu",),
    ).fetchall()


def days(conn, user: str) -> list[tuple]:
    return conn.execute(
        "select session_start, day, hours, observation_count from analytics.session_days"
        " where user_email = %s order by session_start, day",
        (f"{user}@x.edu",),
    ).fetchall()


def test_new_observations_extend_the_open_session(scenarios):
    assert sessions(scenarios, "extend") == [
        (at(0), at(0, 5), 2, "u1", "extend name", 5 / 60),
        (at(2), at(3, 15), 3, "u1", "extend name", 1.25),
    ]
    assert days(scenarios, "extend") == [(at(0), T.date(), 5 / 60, 2), (at(2), T.date(), 1.25, 3)]


def test_a_late_observation_between_two_sessions_merges_them(scenarios):
    assert sessions(scenarios, "late") == [(at(0), at(2, 30), 5, "u1", "late name", 2.5)]
    assert days(scenarios, "late") == [(at(0), T.date(), 2.5, 5)]


def test_another_pod_uid_right_after_the_open_session_starts_a_new_one(scenarios):
    assert sessions(scenarios, "uid")[-1] == (at(2, 35), at(2, 35), 1, "u2", "uid name", 0.0)
    assert len(sessions(scenarios, "uid")) == 3


def test_extending_rows_without_uid_or_name_keep_the_sessions(scenarios):
    assert sessions(scenarios, "nouid")[-1] == (at(2), at(2, 35), 3, "u1", "nouid name", 35 / 60)


def test_a_late_observation_of_another_pod_splits_a_stored_session_and_its_days(scenarios):
    """The earlier part keeps its start (and id) but none of the new observations: its days must change too."""
    assert sessions(scenarios, "split") == [
        (at(0), at(0, 5), 2, "u1", "split name", 5 / 60),
        (at(0, 7), at(0, 15), 3, "u2", "split name", 8 / 60),
    ]
    assert days(scenarios, "split") == [(at(0), T.date(), 5 / 60, 2), (at(0, 7), T.date(), 8 / 60, 3)]

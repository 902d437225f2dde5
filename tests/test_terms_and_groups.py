"""Terms and groups (spec 4) against an independent reference: the session reference's day parts (Python, from the
raw rows) summed over the days of each term in the shipped seed, and over the group each user was in when the session
started (from the membership recordings, also in Python)."""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from loader.config import PROJECT_ROOT
from loader.hub_source import HubSnapshot
from loader.migrate import migrate
from tests.conftest import settings_for
from tests.dbt_helpers import dbt, load_batch, observation
from tests.session_reference import reference
from tests.test_sessions_property import raw_rows

pytestmark = pytest.mark.dbt

STEP = timedelta(minutes=5)
BEFORE_ANY_CHANGE = datetime(2025, 8, 1, tzinfo=UTC)
DAVE_MOVES_AT = datetime(2026, 10, 1, tzinfo=UTC)


def every_5_minutes(user: str, begin: datetime, end: datetime) -> list:
    rows, moment = [], begin
    while moment <= end:
        rows.append(observation(f"{user}@example.edu", f"jupyter-{user}", "cpu-1", moment))
        moment += STEP
    return rows


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


SESSIONS = {
    # Across the end of Fall 2026 (its last day is 2026-12-18): 2 hours in the term, 2 after it.
    "alice": [("2026-12-18 22:00", "2026-12-19 02:00")],
    # Across the end of Spring 2026: 1 hour in it.
    "bob": [("2026-05-15 23:00", "2026-05-16 01:00")],
    # Active in two terms: counts in both.
    "carol": [("2026-09-01 10:00", "2026-09-01 11:00"), ("2027-01-19 09:00", "2027-01-19 10:00")],
    # In cs101 until 2026-10-01, then in lab-x: a session before and one after.
    "dave": [("2026-09-10 09:00", "2026-09-10 12:00"), ("2026-11-02 13:00", "2026-11-02 14:30")],
    # Between terms: no term's hours.
    "erin": [("2026-06-01 10:00", "2026-06-01 11:00")],
    # In two groups at once: counts fully in both.
    "frank": [("2026-11-03 10:00", "2026-11-03 12:00")],
}
FRANKS_HOURS = 2.0
# The membership recordings (collections where the hub's groups changed): the first covers earlier time too.
RECORDINGS = [
    (
        BEFORE_ANY_CHANGE,
        {("cs101", "alice"), ("lab-x", "bob"), ("cs101", "dave"), ("cs101", "frank"), ("lab-x", "frank")},
    ),
    (DAVE_MOVES_AT, {("cs101", "alice"), ("lab-x", "bob"), ("lab-x", "dave"), ("cs101", "frank"), ("lab-x", "frank")}),
]


def seed_terms() -> list[tuple[str, date, date]]:
    with (PROJECT_ROOT / "dbt_project" / "seeds" / "terms.csv").open(encoding="utf-8") as stream:
        return [(row["name"], date.fromisoformat(row["starts_on"]), date.fromisoformat(row["ends_on"])) for row in
                csv.DictReader(stream)]  # fmt: skip


def group_at(user: str, moment: datetime) -> set[str]:
    held = RECORDINGS[0][1]
    for recorded_at, members in RECORDINGS:
        if recorded_at <= moment:
            held = members
    return {group for group, member in held if member == user} or {"(no group)"}


@pytest.fixture(scope="module")
def built(module_database):
    settings = settings_for(module_database)
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        for recorded_at, members in RECORDINGS:  # collections that saw no pod but recorded the groups
            load_batch(conn, settings, [], hub=HubSnapshot([], members, 2), observed_at=recorded_at)
        for user, spans in SESSIONS.items():
            for begin, end in spans:
                load_batch(conn, settings, every_5_minutes(user, at(begin), at(end)))
        dbt(settings, "build")
        yield conn


def expected(conn) -> tuple[dict, dict]:
    """Per term: hours and users; per (term, group): hours and users; from the reference's day parts."""
    _, parts = reference(raw_rows(conn))
    per_term: dict[str, list] = defaultdict(lambda: [0.0, set()])
    per_group: dict[tuple[str, str], list] = defaultdict(lambda: [0.0, set()])
    for part in parts:
        hours = (part["part_end"] - part["part_start"]).total_seconds() / 3600
        user = part["user_email"].split("@")[0]
        for term, starts_on, ends_on in seed_terms():
            if starts_on <= part["day"] <= ends_on:
                per_term[term][0] += hours
                per_term[term][1].add(user)
                for group in group_at(user, part["session_start"]):
                    per_group[(term, group)][0] += hours
                    per_group[(term, group)][1].add(user)
    return per_term, per_group


def test_term_hours_split_at_term_boundaries_as_the_reference_does(built):
    per_term, _ = expected(built)
    rows = built.execute(
        "select term, sum(total_hours), sum(users) from analytics.term_usage group by term order by term"
    ).fetchall()
    assert {term: (pytest.approx(hours, abs=1e-9), users) for term, hours, users in rows} == {
        term: (pytest.approx(hours, abs=1e-9), len(users)) for term, (hours, users) in per_term.items()
    }
    by_term = {term: hours for term, hours, _ in rows}
    assert by_term["Fall 2026"] == pytest.approx(2 + 1 + 3 + 1.5 + 2)  # alice's 2 of 4, carol, dave twice, frank
    assert by_term["Spring 2026"] == pytest.approx(1)  # bob's hour before midnight
    assert by_term["Spring 2027"] == pytest.approx(1)  # carol again: she counts in both terms
    assert "Summer 2026" not in by_term  # erin's session falls between terms


def test_group_hours_follow_membership_when_the_session_started(built):
    _, per_group = expected(built)
    rows = built.execute("select term, group_name, total_hours, users from analytics.group_term_usage").fetchall()
    assert {(term, group): (pytest.approx(hours, abs=1e-9), users) for term, group, hours, users in rows} == {
        key: (pytest.approx(hours, abs=1e-9), len(users)) for key, (hours, users) in per_group.items()
    }
    fall = {group: hours for term, group, hours, _ in rows if term == "Fall 2026"}
    assert fall == {
        "cs101": pytest.approx(2 + 3 + 2),
        "lab-x": pytest.approx(1.5 + 2),
        "(no group)": pytest.approx(1),
    }  # dave: cs101 before his move, lab-x after; frank in both


def test_groups_add_up_to_the_department_totals_but_for_a_user_in_two_groups(built):
    by_month = built.execute(
        "select g.month, g.hours, d.hours from"
        " (select month, sum(total_hours) as hours from analytics.group_usage group by month) as g"
        " full join (select month, sum(total_hours) as hours from analytics.department_usage group by month) as d"
        " on g.month = d.month order by 1"
    ).fetchall()
    # Only frank, in two groups, is counted twice (in November).
    excess = {month.month: groups - departments for month, groups, departments in by_month}
    assert excess == {5: pytest.approx(0), 6: pytest.approx(0), 9: pytest.approx(0), 11: pytest.approx(FRANKS_HOURS),
                      12: pytest.approx(0), 1: pytest.approx(0)}  # fmt: skip
    terms = built.execute(
        "select t.term, t.hours, g.hours from"
        " (select term, sum(total_hours) as hours from analytics.term_usage group by term) as t"
        " join (select term, sum(total_hours) as hours from analytics.group_term_usage group by term) as g"
        " using (term)"
    ).fetchall()
    excess_by_term = {term: groups - departments for term, departments, groups in terms}
    assert excess_by_term == {"Spring 2026": pytest.approx(0), "Fall 2026": pytest.approx(FRANKS_HOURS),
                              "Spring 2027": pytest.approx(0)}  # fmt: skip

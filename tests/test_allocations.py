"""Allocations (spec 3.9) against an independent reference: the session reference's day parts (Python, from the raw
rows) and the storage reference's volume days give each grantee's use per day, by membership as it was when a session
started, the department, and the user; the burn-down (used, remaining, burn rate over 14 days, projected exhaustion,
status) is computed here in plain Python. Sessions cross midnight and a term's first day; a group's member moves to
another group mid-term; one allocation runs out, one is given by a term, one is still to come. A bad allocations file
fails the build in one line (tests/test_failed_builds.py has those)."""

from __future__ import annotations

import math
import shutil
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from loader.config import PROJECT_ROOT
from loader.hub_source import HubSnapshot
from loader.migrate import migrate
from loader.storage import VOLUME, StorageRow
from tests.conftest import settings_for
from tests.dbt_helpers import dbt, load_batch, observation
from tests.session_reference import reference
from tests.storage_reference import GIB, Collection, volume_days
from tests.test_dashboards import check_alert_rules
from tests.test_sessions_property import raw_rows
from tests.test_storage_marts import record
from tests.test_terms_and_groups import seed_terms

pytestmark = pytest.mark.dbt

STEP = timedelta(minutes=5)
BOB_MOVES_AT = datetime(2026, 10, 15, tzinfo=UTC)
RECORDINGS = [
    (datetime(2026, 8, 1, tzinfo=UTC), {("cs101", "alice"), ("cs101", "bob")}),
    (BOB_MOVES_AT, {("cs101", "alice"), ("lab-x", "bob")}),
]
DEPARTMENTS = {"alice": "Physics", "bob": "Chemistry", "carol": "Physics", "dave": "Economics"}
# user: (gpu_count, [(begin, end)]); every 5 minutes from begin to end, one session each.
SESSIONS = {
    # Across the first day of Fall 2026 (2026-08-24): two of its four hours count in the term.
    "alice": (2, [("2026-08-23 22:00", "2026-08-24 02:00"), ("2026-09-10 10:00", "2026-09-10 14:00"),
                  ("2026-11-20 23:00", "2026-11-21 03:00")]),
    # In cs101 for the first, in lab-x for the others: lab-x's cores run out on October 21.
    "bob": (0, [("2026-10-10 09:00", "2026-10-10 17:00"), ("2026-10-20 08:00", "2026-10-20 20:00"),
                ("2026-10-21 08:00", "2026-10-22 08:00")]),
    # Every day for three weeks of November: a steady burn rate.
    "carol": (1, [(f"2026-11-{day:02d} 09:00", f"2026-11-{day:02d} 12:00") for day in range(1, 22)]),
}  # fmt: skip
ALLOCATIONS = (
    "name,grantee_kind,grantee,resource,amount,term,starts_on,ends_on,first_warning_percent,second_warning_percent\n"
    "cs101 GPU,group,cs101,gpu_hours,40,Fall 2026,,,,\n"
    "lab-x cores,group,lab-x,cpu_core_hours,10,,2026-10-01,2026-10-31,,\n"
    "Physics GPU,department,Physics,gpu_hours,90,,2026-09-01,2026-11-30,50,80\n"
    "dave storage,user,dave@example.edu,storage_gb_months,2,,2026-11-01,2026-11-30,,\n"
    "cs101 cores next term,group,cs101,cpu_core_hours,100,Spring 2027,,,,\n"
    # Current whenever the tests run: past both thresholds with no recent use; and one used in the last days, at a
    # pace that runs it out long before its end.
    "carol GPU,user,carol@example.edu,gpu_hours,70,,2026-11-01,2099-12-31,,\n"
    "dave cores,user,dave@example.edu,cpu_core_hours,100,,2026-11-01,2099-12-31,,\n"
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def every_5_minutes(user: str, gpus: int, begin: datetime, end: datetime) -> list:
    rows, moment = [], begin
    node = "gpu-1" if gpus else "cpu-1"
    while moment <= end:
        rows.append(observation(f"{user}@example.edu", f"jupyter-{user}", node, moment, gpu_count=gpus))
        moment += STEP
    return rows


def daves_storage() -> list[Collection]:
    """Dave's volume through November, read on most days (the rest carried)."""
    collections = []
    for day in range(1, 31):
        if day % 4 == 0:
            continue
        moment = datetime(2026, 11, day, 18, tzinfo=UTC)
        row = StorageRow(VOLUME, "test", "jhub", "claim-dave", "dave", "dave@example.edu", None,
                         (20 + day) * GIB, 100 * GIB, None, 1000, None)  # fmt: skip
        collections.append(Collection(moment, [row], frozenset()))
    return collections


def group_at(user: str, moment: datetime) -> set[str]:
    held = RECORDINGS[0][1]
    for recorded_at, members in RECORDINGS:
        if recorded_at <= moment:
            held = members
    return {group for group, member in held if member == user}


@pytest.fixture(scope="module")
def built(module_database, tmp_path_factory):
    project = tmp_path_factory.mktemp("allocations") / "dbt_project"
    shutil.copytree(PROJECT_ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs"))
    (project / "seeds" / "allocations.csv").write_text(ALLOCATIONS)
    settings = settings_for(module_database, dbt_project_dir=project)
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        for recorded_at, members in RECORDINGS:
            load_batch(conn, settings, [], hub=HubSnapshot([], members, 2), observed_at=recorded_at)
        for user, (gpus, spans) in SESSIONS.items():
            for begin, end in spans:
                load_batch(conn, settings, every_5_minutes(user, gpus, at(begin), at(end)))
        load_batch(conn, settings, every_5_minutes("dave", 0, at("2026-11-02 09:00"), at("2026-11-02 10:00")))
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        for days_ago in range(5, 0, -1):  # eight hours a day on each of the last five days
            begin = midnight - timedelta(days=days_ago) + timedelta(hours=9)
            load_batch(conn, settings, every_5_minutes("dave", 0, begin, begin + timedelta(hours=8)))
        for user, department in DEPARTMENTS.items():
            conn.execute(
                "update raw.users set department = %s, directory_status = 'found', fetched_at = now() where email = %s",
                (department, f"{user}@example.edu"),
            )
        for collection in daves_storage():
            record(conn, settings, collection)
        dbt(settings, "build")
        yield conn


def expected_use(conn) -> dict[str, dict[date, float]]:
    """Per allocation and day: what its grantee used, from the references."""
    _, parts = reference(raw_rows(conn))
    sessions = {
        (row.observation.user_email, row.observation.pod_name): row.observation.gpu_count for row in raw_rows(conn)
    }
    terms = {name: (starts_on, ends_on) for name, starts_on, ends_on in seed_terms()}
    use: dict[str, dict[date, float]] = defaultdict(lambda: defaultdict(float))
    for part in parts:
        hours = (part["part_end"] - part["part_start"]).total_seconds() / 3600
        user = part["user_email"].split("@")[0]
        gpus = sessions[(part["user_email"], part["pod_name"])]
        day = part["day"]
        if "cs101" in group_at(user, part["session_start"]) and terms["Fall 2026"][0] <= day <= terms["Fall 2026"][1]:
            use["cs101 GPU"][day] += gpus * hours
        if "lab-x" in group_at(user, part["session_start"]) and date(2026, 10, 1) <= day <= date(2026, 10, 31):
            use["lab-x cores"][day] += 0.5 * hours
        if DEPARTMENTS[user] == "Physics" and date(2026, 9, 1) <= day <= date(2026, 11, 30):
            use["Physics GPU"][day] += gpus * hours
    for row in volume_days(daves_storage()):
        use["dave storage"][row["storage_day"]] += row["gb_months"]
    return use


def burn_down(amount: float, starts_on: date, ends_on: date, use: dict[date, float], today: date, warnings=(75, 90)):
    """The allocation's days as the reference reckons them."""
    rows, used, recent = [], 0.0, []
    exhausted_on = None
    day = starts_on
    while day <= min(ends_on, today):
        used += use.get(day, 0.0)
        recent = [*recent, use.get(day, 0.0)][-14:]
        burn = sum(recent) / len(recent)
        if exhausted_on is None and used >= amount:
            exhausted_on = day
        remaining = amount - used
        if exhausted_on is not None:
            projected = exhausted_on
        else:
            projected = day + timedelta(days=math.ceil(remaining / burn)) if burn > 0 else None
        percent = 100 * used / amount
        status = "exhausted" if exhausted_on else "warning" if percent >= warnings[0] else "ok"
        rows.append((day, used, remaining, burn, projected, status))
        day += timedelta(days=1)
    return rows


def test_every_allocation_day_equals_the_reference(built):
    conn = built
    today = conn.execute("select (now() at time zone 'UTC')::date").fetchone()[0]
    use = expected_use(conn)
    periods = {
        "cs101 GPU": (40, date(2026, 8, 24), date(2026, 12, 18), (75, 90)),
        "lab-x cores": (10, date(2026, 10, 1), date(2026, 10, 31), (75, 90)),
        "Physics GPU": (90, date(2026, 9, 1), date(2026, 11, 30), (50, 80)),
        "dave storage": (2, date(2026, 11, 1), date(2026, 11, 30), (75, 90)),
    }
    for name, (amount, starts_on, ends_on, warnings) in periods.items():
        expected = burn_down(amount, starts_on, ends_on, use[name], today, warnings)
        rows = conn.execute(
            "select day, used, remaining, burn_rate_per_day, projected_exhaustion_on, status"
            " from analytics.allocation_days where allocation_name = %s order by day",
            (name,),
        ).fetchall()
        assert [row[0] for row in rows] == [row[0] for row in expected], name
        for got, wanted in zip(rows, expected, strict=True):
            assert [float(value) for value in got[1:4]] == pytest.approx(list(wanted[1:4]), rel=1e-9, abs=1e-9), (
                name,
                got,
                wanted,
            )
            assert got[4:] == wanted[4:], (name, got, wanted)
    # What the stream was made to show.
    assert burn_down(10, date(2026, 10, 1), date(2026, 10, 31), use["lab-x cores"], today)[-1][-1] == "exhausted"
    assert use["cs101 GPU"][date(2026, 8, 23)] == 0 and use["cs101 GPU"][date(2026, 8, 24)] == pytest.approx(4.0)


def test_the_status_list_says_where_each_allocation_stands(built):
    conn = built
    today = conn.execute("select (now() at time zone 'UTC')::date").fetchone()[0]
    rows = {
        name: (state, status, exhausted, ends)
        for name, state, status, exhausted, ends in conn.execute(
            "select allocation_name, period_state, status, projected_exhaustion_on, runs_out_before_end"
            " from analytics.allocation_status"
        ).fetchall()
    }
    assert rows["lab-x cores"] == ("ended", "exhausted", date(2026, 10, 21), True)
    assert rows["cs101 cores next term"][:2] == ("upcoming" if today < date(2027, 1, 19) else "current", "ok")
    assert set(rows) == {
        "cs101 GPU", "lab-x cores", "Physics GPU", "dave storage", "cs101 cores next term", "carol GPU", "dave cores"
    }  # fmt: skip
    used = dict(conn.execute("select allocation_name, used from analytics.allocation_status").fetchall())
    assert float(used["Physics GPU"]) == pytest.approx(sum(expected_use(conn)["Physics GPU"].values()), rel=1e-9)
    assert Decimal(used["cs101 cores next term"]) == 0


def test_the_alert_rules_fire_for_the_allocations_past_their_conditions(built):
    conn = built
    status = dict(
        conn.execute("select allocation_name, runs_out_before_end from analytics.allocation_status").fetchall()
    )
    assert status["dave cores"] is True and status["carol GPU"] is not True
    # carol GPU past both thresholds, dave cores running out early; each rule's query finds exactly those.
    assert check_alert_rules(conn) == 3

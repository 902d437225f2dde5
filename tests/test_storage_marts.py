"""The storage marts (spec 3.8) equal an independent reference (tests/storage_reference.py) on an adversarial stream of
collections through the loader's write path: per-user volumes mounted and unmounted, a deleted one, shared home
directories matched by names shown before and after they first appear, one no user showed and one two users showed,
whole days without a collection, collections whose Prometheus failed, late collections for past days, across month
ends, a rate change and a term's end; built in phases, then rebuilt from all history."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from loader.migrate import migrate
from loader.raw_store import RunKind, RunRecord, StorageWrite, record_collection
from loader.storage import DIRECTORY, VOLUME, NameShown, StorageRow
from tests.conftest import settings_for
from tests.dbt_helpers import dbt, load_batch, observation
from tests.session_reference import differences
from tests.storage_reference import (
    GIB,
    Collection,
    monthly_gb_months,
    stale_homes,
    storage_days,
    term_gb_months,
    volume_days,
)
from tests.test_sessions_property import table

FIRST_DAY = date(2026, 6, 27)
DAYS = 44  # to 2026-08-09: two month ends, the example rates' change on July 1, Summer 2026's end on August 7
NO_COLLECTION_DAYS = {date(2026, 7, 3), date(2026, 7, 4), date(2026, 7, 31)}
PROMETHEUS_DOWN_DAYS = {date(2026, 7, 12)}
EXAMPLE_RATES = [
    (date(2000, 1, 1), date(2026, 7, 1), Decimal("0.12")),
    (date(2026, 7, 1), date(9999, 12, 31), Decimal("0.10")),
]
SUMMER_2026 = ("Summer 2026", date(2026, 6, 15), date(2026, 8, 7))
# What a cycle rebuilds of storage (the rest of the project is built once first, and again from all history last).
STORAGE_MODELS = ["int_storage_volume_days", "storage_volumes"]


def volume_users(rng: random.Random) -> list[dict]:
    """Per-user PVCs (the email given by the claim) and shared home directories (matched through names shown)."""
    people = []
    for number in range(6):
        people.append({"layout": VOLUME, "email": f"pvc{number}@example.edu", "name": f"claim-pvc{number}"})
    for number in range(6):
        people.append({"layout": DIRECTORY, "email": f"home{number}@example.edu", "name": f"home{number}"})
    people[2]["deleted_after"] = FIRST_DAY + timedelta(days=20)  # a PVC deleted: its days end there
    people[8]["shown_from"] = FIRST_DAY + timedelta(days=25)  # a home directory whose owner first logs in late
    people[9]["email"] = None  # a home directory no user ever showed
    people[10]["ambiguous"] = True  # a home directory two users showed the same escaped name of
    for person in people:
        person["size"] = rng.randrange(1, 40) * GIB // 4
        person["quota"] = 50 * GIB if person["layout"] == DIRECTORY and rng.random() < 0.5 else None
    return people


def collection_of(rng: random.Random, people: list[dict], moment: datetime) -> Collection:
    day = moment.date()
    prometheus_down = day in PROMETHEUS_DOWN_DAYS
    rows, names = [], set()
    for person in people:
        if person.get("deleted_after") and day > person["deleted_after"]:
            continue
        if person["email"] and day >= person.get("shown_from", FIRST_DAY):
            names.add(NameShown(person["email"], person["email"].split("@")[0], person["name"]))
            if person.get("ambiguous"):
                names.add(NameShown("someone.else@example.edu", "someone-else", person["name"]))
        person["size"] = max(0, person["size"] + rng.randrange(-GIB // 2, GIB))
        mounted = rng.random() < 0.6
        if person["layout"] == VOLUME:
            rows.append(
                StorageRow(
                    layout=VOLUME,
                    cluster="test",
                    namespace="jhub",
                    volume_name=person["name"],
                    owner_name=person["email"].split("@")[0],
                    user_email=person["email"],
                    server_name=None,
                    used_bytes=person["size"] if mounted and not prometheus_down else None,
                    capacity_bytes=10 * GIB,
                    quota_bytes=None,
                    file_count=person["size"] // 2**20 if mounted and not prometheus_down else None,
                    last_modified_at=None,
                )
            )
        elif not prometheus_down:
            rows.append(
                StorageRow(
                    layout=DIRECTORY,
                    cluster="test",
                    namespace="jhub",
                    volume_name=person["name"],
                    owner_name=person["name"],
                    user_email=None,
                    server_name=None,
                    used_bytes=person["size"],
                    capacity_bytes=None,
                    quota_bytes=person["quota"],
                    file_count=person["size"] // 2**20,
                    last_modified_at=moment - timedelta(hours=rng.randrange(0, 48)),
                )
            )
    return Collection(moment, rows, frozenset(names))


def stream(rng: random.Random) -> list[Collection]:
    people = volume_users(rng)
    collections = []
    for offset in range(DAYS):
        day = FIRST_DAY + timedelta(days=offset)
        if day in NO_COLLECTION_DAYS:
            continue
        for _ in range(rng.randrange(1, 4)):
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 1440))
            collections.append(collection_of(rng, people, moment))
    return sorted(collections, key=lambda c: c.moment)


def record(conn, settings, collection: Collection) -> None:
    run = RunRecord(kind=RunKind.COLLECT, started_at=datetime.now(UTC), cluster="test", observed_at=collection.moment)
    record_collection(conn, settings.raw_schema, run, [], storage=StorageWrite(collection.names, list(collection.rows)))


def built(conn, name: str, key: list[str]) -> list[dict]:
    return sorted(table(conn, name), key=lambda row: tuple(str(row[column]) for column in key))


VOLUME_DAY_KEY = ["layout", "cluster", "namespace", "volume_name", "storage_day"]


def assert_equal_to_reference(conn, collections: list[Collection], last_sessions: dict[str, datetime]) -> None:
    expected_days = volume_days(collections)
    days = table(conn, "int_storage_volume_days")
    assert (
        differences([{name: row[name] for name in expected_days[0]} for row in days], expected_days, VOLUME_DAY_KEY)
        == []
    )
    expected_users = storage_days(expected_days, EXAMPLE_RATES)
    users = table(conn, "storage_days")
    assert (
        differences(
            [{name: row[name] for name in expected_users[0]} for row in users],
            expected_users,
            ["storage_day", "user_email"],
        )
        == []
    )
    monthly = {
        (row["month"], row["user_email"]): row["gb_months"]
        for row in conn.execute(
            "select month, user_email, sum(gb_months) as gb_months from analytics.user_storage_usage"
            " group by month, user_email"
        ).fetchall()
        for row in [dict(zip(["month", "user_email", "gb_months"], row, strict=True))]
    }
    assert monthly.keys() == monthly_gb_months(expected_days).keys()
    for key, gb_months in monthly_gb_months(expected_days).items():
        assert float(monthly[key]) == pytest.approx(gb_months, rel=1e-9), key
    (term_total,) = conn.execute(
        "select sum(gb_months) from analytics.term_storage_usage where term = %s", (SUMMER_2026[0],)
    ).fetchone()
    assert float(term_total) == pytest.approx(term_gb_months(expected_days, [SUMMER_2026])[SUMMER_2026[0]], rel=1e-9)
    now = conn.execute("select now()").fetchone()[0]
    stale = {
        tuple(row[:4]): row[4]
        for row in conn.execute(
            "select layout, cluster, namespace, volume_name, stale_reason from analytics.stale_homes"
        ).fetchall()
    }
    assert stale == stale_homes(expected_days, last_sessions, now, 180)


def storage_marts_equal_the_reference_built_in_cycles_and_from_all_history(database, conn, seed):
    rng = random.Random(seed)
    plain = settings_for(database)
    settings = replace(plain, rules=(*plain.rules, ("EXAMPLE_COST_RATES", "true")))
    conn.autocommit = True
    migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
    collections = stream(rng)
    # Sessions: one user recent, one last seen long ago, one within the stale period's reach; the rest have none.
    now = datetime.now(UTC)
    last_sessions = {
        "pvc0@example.edu": now - timedelta(days=2),
        "pvc1@example.edu": now - timedelta(days=400),
        "home0@example.edu": now - timedelta(days=100),
    }
    for email, moment in last_sessions.items():
        load_batch(conn, settings, [observation(email, f"jupyter-{email[:4]}", "cpu-node-1", moment)])

    # The 5-minute cycle, compressed: a build every second day. A tenth of those after the tenth day arrive late, after
    # all the others, in two batches: past days' figures change, and days that had no collection gain one.
    late = [c for c in collections if c.moment.date() >= FIRST_DAY + timedelta(days=10) and rng.random() < 0.1]
    on_time = [collection for collection in collections if collection not in late]
    dbt(settings, "build")  # first build: seeds, the directory's history, empty tables
    for first in range(0, DAYS, 2):
        days = {FIRST_DAY + timedelta(days=first + n) for n in range(2)}
        for collection in on_time:
            if collection.moment.date() in days:
                record(conn, settings, collection)
        dbt(settings, "run", "--select", *STORAGE_MODELS)
    for batch in (late[::2], late[1::2]):
        for collection in batch:
            record(conn, settings, collection)
        dbt(settings, "run", "--select", *STORAGE_MODELS)
    assert_equal_to_reference(conn, collections, last_sessions)
    incremental = {
        name: built(conn, name, VOLUME_DAY_KEY[:4]) for name in ("int_storage_volume_days", "storage_volumes")
    }

    dbt(settings, "build", "--full-refresh")  # and every data test
    rebuilt = {name: built(conn, name, VOLUME_DAY_KEY[:4]) for name in incremental}
    for name, rows in incremental.items():
        key = VOLUME_DAY_KEY if name == "int_storage_volume_days" else VOLUME_DAY_KEY[:4]
        without_marks = [{k: v for k, v in row.items() if k != "last_collector_run_id"} for row in rows]
        assert (
            differences(
                [{k: v for k, v in row.items() if k != "last_collector_run_id"} for row in rebuilt[name]],
                without_marks,
                key,
            )
            == []
        ), name
    assert_equal_to_reference(conn, collections, last_sessions)
    # What the stream holds: every kind of stale home, and carried days.
    assert set(
        stale_homes(volume_days(collections), last_sessions, conn.execute("select now()").fetchone()[0], 180).values()
    ) == {
        "owner unknown",
        "no session recorded",
        "last session over 180 days ago",
    }


# The stream's shape (gaps, late rows, rematches, a deletion, Prometheus down) is the same for every seed; one seed
# keeps the suite within its time (mutations of the gap fill and of the rematch fail it).
def test_storage_marts_equal_the_reference_built_in_cycles_and_from_all_history(database, conn):
    storage_marts_equal_the_reference_built_in_cycles_and_from_all_history(database, conn, 3)

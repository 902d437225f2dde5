"""`export xdmod`: closed sessions as Open XDMoD Cloud-realm events, validated against our copy of its event schema
(tests/schemas), and back to hours: per instance STOP minus START gives the session's runtime, and the stretches
between an instance's events give its hours per day."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import jsonschema
import psycopg
import pytest
from typer.testing import CliRunner

from loader.cli import app
from loader.migrate import migrate
from loader.xdmod import export_xdmod
from tests.conftest import settings_for
from tests.dbt_helpers import dbt, load_batch, observation

pytestmark = pytest.mark.dbt

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "xdmod_cloud_event.schema.json").read_text())
HMAC_KEY = "5c1f0b9e3a7d46e2a8b17c90d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c"
LAST_COLLECTION = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def every_5_minutes(user: str, begin: str, end: str, **fields) -> list:
    rows, moment, node = [], at(begin), fields.pop("node", "cpu-1")
    while moment <= at(end):
        rows.append(observation(f"{user}@example.edu", f"jupyter-{user}", node, moment, **fields))
        moment += timedelta(minutes=5)
    return rows


@pytest.fixture(scope="module")
def built(module_database):
    settings = settings_for(module_database, export_hmac_key=HMAC_KEY)
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        gpu = {"gpu_count": 2, "gpu_model": "NVIDIA A100-SXM4-80GB", "cpu_request": Decimal("3.5"),
               "memory_request_bytes": 32 * 2**30}  # fmt: skip
        # Across midnight, on two GPUs.
        load_batch(
            conn, settings, every_5_minutes("alice", "2026-11-02 22:00", "2026-11-03 02:30", node="gpu-1", **gpu)
        )
        # Two sessions 75 minutes apart (more than the gap)...
        load_batch(conn, settings, every_5_minutes("bob", "2026-11-04 10:00", "2026-11-04 10:30"))
        load_batch(conn, settings, every_5_minutes("bob", "2026-11-04 11:45", "2026-11-04 12:15"))
        # ...and a session still open at the last collection: not exported until it can no longer grow.
        load_batch(conn, settings, every_5_minutes("carol", "2026-11-05 11:00", "2026-11-05 11:55"))
        load_batch(conn, settings, [], observed_at=LAST_COLLECTION)
        dbt(settings, "build")
        yield settings, conn


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def by_instance(events: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        grouped[event["instance_id"]].append(event)
    return dict(grouped)


def moment(event: dict) -> datetime:
    return datetime.strptime(event["event_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def test_every_event_validates_and_sessions_come_back_as_their_hours(built, tmp_path):
    settings, conn = built
    out = tmp_path / "events.json"
    sessions, count = export_xdmod(settings, out, since=None, pseudonymize=False)
    events = read(out)
    assert (sessions, count) == (3, len(events))
    for event in events:
        jsonschema.validate(event, SCHEMA)
    instances = by_instance(events)
    runtimes = dict(
        conn.execute(
            "select 'jhm-' || session_id, runtime_hours from analytics.user_sessions"
            " where user_email <> 'carol@example.edu'"
        ).fetchall()
    )
    assert set(instances) == set(runtimes)  # carol's open session is not exported
    for instance, stream in instances.items():
        kinds = [event["event_type"] for event in stream]
        assert kinds[0] == "START" and kinds[-1] == "STOP" and set(kinds[1:-1]) <= {"STATE_REPORT"}
        hours = (moment(stream[-1]) - moment(stream[0])).total_seconds() / 3600
        assert hours == pytest.approx(runtimes[instance], abs=1 / 3600)


def test_a_session_across_midnight_reports_at_midnight_and_splits_as_session_days_do(built, tmp_path):
    settings, conn = built
    out = tmp_path / "events.json"
    export_xdmod(settings, out, since=None, pseudonymize=False)
    alice = next(stream for stream in by_instance(read(out)).values() if stream[0]["user"] == "alice@example.edu")
    assert [(e["event_type"], e["event_time"]) for e in alice] == [
        ("START", "2026-11-02T22:00:00Z"),
        ("STATE_REPORT", "2026-11-03T00:00:00Z"),
        ("STOP", "2026-11-03T02:30:00Z"),
    ]
    per_day: dict[date, float] = defaultdict(float)
    for before, after in zip(alice, alice[1:], strict=False):
        per_day[moment(before).date()] += (moment(after) - moment(before)).total_seconds() / 3600
    expected = dict(
        conn.execute(
            "select day, hours from analytics.session_days where user_email = 'alice@example.edu' order by day"
        ).fetchall()
    )
    assert per_day == {day: pytest.approx(hours) for day, hours in expected.items()}
    assert alice[0]["instance_type"] == {
        "name": "jupyter gpu, 2 x NVIDIA A100-SXM4-80GB, 4 cores, 32768 MB",
        "cpu": 4,  # 3.5 requested cores, rounded up
        "memory": 32768,
        "gpus": 2,
        "gpu_model": "NVIDIA A100-SXM4-80GB",
    }
    assert alice[0]["account"] == "Unknown" and alice[0]["node_controller"] == "gpu-1"


def test_a_late_row_that_merges_two_sessions_exports_one_instance(database, tmp_path):
    settings = settings_for(database)
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        load_batch(conn, settings, every_5_minutes("dan", "2026-11-04 10:00", "2026-11-04 10:30"))
        load_batch(conn, settings, every_5_minutes("dan", "2026-11-04 11:45", "2026-11-04 12:15"))
        load_batch(conn, settings, [], observed_at=LAST_COLLECTION)
        dbt(settings, "build")
        before = tmp_path / "before.json"
        export_xdmod(settings, before, since=None, pseudonymize=False)
        assert len(by_instance(read(before))) == 2
        # A backfilled observation at 11:05 closes the gap: the two sessions were one.
        load_batch(conn, settings, [observation("dan@example.edu", "jupyter-dan", "cpu-1", at("2026-11-04 11:05"))])
        dbt(settings, "build")
    after = tmp_path / "after.json"
    export_xdmod(settings, after, since=None, pseudonymize=False)
    merged = by_instance(read(after))
    assert len(merged) == 1
    (stream,) = merged.values()
    assert [(e["event_type"], e["event_time"]) for e in stream] == [
        ("START", "2026-11-04T10:00:00Z"),
        ("STOP", "2026-11-04T12:15:00Z"),
    ]
    assert set(merged) < set(by_instance(read(before)))  # the first session keeps its id; the second's is gone


def test_exports_are_incremental_by_day_and_a_re_export_repeats_identical_lines(built, tmp_path):
    settings, _ = built
    everything, again, recent = tmp_path / "all.json", tmp_path / "again.json", tmp_path / "recent.json"
    export_xdmod(settings, everything, since=None, pseudonymize=False)
    export_xdmod(settings, again, since=None, pseudonymize=False)
    assert everything.read_bytes() == again.read_bytes()
    export_xdmod(settings, recent, since=date(2026, 11, 4), pseudonymize=False)
    recent_lines = recent.read_text().splitlines()
    assert {json.loads(line)["user"] for line in recent_lines} == {"bob@example.edu"}  # alice ended on the 3rd
    assert set(recent_lines) <= set(everything.read_text().splitlines())


def test_pseudonymised_events_name_no_one_and_the_cli_says_what_it_wrote(built, tmp_path):
    settings, _ = built
    environment = {**settings.database.environment(), "EXPORT_HMAC_KEY": HMAC_KEY}
    out = tmp_path / "events.json"
    result = CliRunner().invoke(app, ["export", "xdmod", "--out", str(out), "--pseudonymize"], env=environment)
    assert result.exit_code == 0 and "of 3 closed sessions" in result.output, result.output
    text = out.read_text()
    assert "@example.edu" not in text and "alice" not in text
    assert all(len(json.loads(line)["user"]) == 32 for line in text.splitlines())
    wrong = CliRunner().invoke(app, ["export", "xdmod", "--since", "last week"], env=environment)
    assert wrong.exit_code == 2 and "YYYY-MM-DD" in wrong.output

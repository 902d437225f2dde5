"""Department history (dbt snapshot) and the CSV exports, on a known data set built with dbt."""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from loader.cli import app
from loader.dbt_runner import COMPLETE_BUILD_ARGS
from loader.errors import ConfigurationError
from loader.export import USAGE_COLUMNS, export_departments, export_usage
from loader.graph_source import DirectoryEntry
from loader.migrate import migrate
from loader.raw_store import write_directory_entries
from tests.conftest import settings_for
from tests.dbt_helpers import dbt, load_batch, observation

pytestmark = pytest.mark.dbt

NOW = datetime.now(UTC).replace(microsecond=0)
# Two days ago, but never in the previous month, so that every session falls in one month.
PAST = max(NOW - timedelta(days=2), NOW.replace(day=1, hour=0, minute=0, second=0))
# 32 random bytes as hex, as `secrets.token_hex(32)` makes them (made once for the tests).
HMAC_KEY = "5c1f0b9e3a7d46e2a8b17c90d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c"
OTHER_KEY = "d9e0f1a2b3c4d5e6f708192a3b4c5c1f0b9e3a7d46e2a8b17c90d3e4f5a6b7c8"


def session(user, pod, node, start, minutes, **kwargs):
    return [observation(user, pod, node, start + timedelta(minutes=m), **kwargs) for m in range(0, minutes + 1, 5)]


def found(email, name, department, title):
    return DirectoryEntry(email, "found", f"id-{email}", name, department, title)


@pytest.fixture(scope="module")
def history(module_database):
    settings = settings_for(module_database, export_hmac_key=HMAC_KEY)
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        load_batch(
            conn,
            settings,
            session("alice@x.edu", "jupyter-alice", "gpu-1", PAST, 60, container_base="torch", gpu_count=1)
            + session("bob@x.edu", "jupyter-bob", "cpu-1", PAST, 30, container_base="scipy")
            + session("zoë@x.edu", "jupyter-zoe", "cpu-1", PAST, 15, container_base="r"),
        )
        write_directory_entries(
            conn,
            settings.raw_schema,
            [
                found("alice@x.edu", "Alice Ådahl", "Physics", "GRAD RESEARCH ASST"),
                found("bob@x.edu", "Bob, Jr.", "Fellowships", "GRAD TEACHING ASST, Physics"),
                DirectoryEntry("zoë@x.edu", "not_found"),
            ],
        )
        dbt(settings, *COMPLETE_BUILD_ARGS)
        # Alice moves to Chemistry; the next sync and build record a second version...
        write_directory_entries(
            conn, settings.raw_schema, [found("alice@x.edu", "Alice Ådahl", "Chemistry", "POSTDOC")]
        )
        dbt(settings, *COMPLETE_BUILD_ARGS)
        # ...and her sessions from then on belong to Chemistry.
        later = datetime.now(UTC) + timedelta(minutes=1)
        load_batch(conn, settings, session("alice@x.edu", "jupyter-alice", "cpu-2", later, 30, container_base="torch"))
        dbt(settings, *COMPLETE_BUILD_ARGS)
    return settings


@pytest.fixture
def db(history):
    with psycopg.connect(autocommit=True, **history.database.connect_kwargs()) as conn:
        yield conn


def test_department_change_gives_two_history_rows_and_past_sessions_keep_the_old_department(db):
    versions = db.execute(
        "select department, job_title, dbt_valid_to is null from analytics.users_history"
        " where email = 'alice@x.edu' order by dbt_valid_from"
    ).fetchall()
    assert versions == [("Physics", "GRAD RESEARCH ASST", False), ("Chemistry", "POSTDOC", True)]
    attributed = db.execute(
        "select department, sum(sessions), sum(total_hours) from analytics.department_usage"
        " where department in ('Physics', 'Chemistry') group by department order by department"
    ).fetchall()
    assert attributed == [("Chemistry", 1, 0.5), ("Physics", 2, 1.5)]  # Physics: Alice's old session and Bob's
    assert db.execute("select department, job_title from analytics.users where email = 'alice@x.edu'").fetchone() == (
        "Chemistry",
        "POSTDOC",
    )


def test_usage_csv_has_the_exact_columns_and_values(history, tmp_path):
    out = tmp_path / "user_usage_stats.csv"
    assert export_usage(history, out, pseudonymize=False) == 3
    raw = out.read_bytes()
    raw.decode("utf-8")  # UTF-8 throughout
    with out.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == list(USAGE_COLUMNS)
    last_alice = (datetime.now(UTC) + timedelta(minutes=1)).date().isoformat()
    alice, bob, zoe = rows[1:]
    assert alice[:8] == ["Alice Ådahl", "alice@x.edu", "Chemistry", "POSTDOC", "1.00", "0.50", "1.50", "2"]
    assert alice[8].startswith(last_alice) and alice[8].endswith("+00:00") and alice[9] == "torch"
    assert bob == [
        "Bob, Jr.",
        "bob@x.edu",
        "Physics",
        "GRAD TEACHING ASST",
        "0.00",
        "0.50",
        "0.50",
        "1",
        (PAST + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "scipy",
        "",  # active_hours: the hub was not read
        "",  # median_startup_seconds: no pod conditions recorded
    ]
    assert zoe == [
        "",
        "zoë@x.edu",
        "",
        "",
        "0.00",
        "0.25",
        "0.25",
        "1",
        (PAST + timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "r",
        "",
        "",
    ]


def test_pseudonymised_csv_is_stable_and_free_of_identities(history, tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    export_usage(history, first, pseudonymize=True, min_users=1)
    export_usage(history, second, pseudonymize=True, min_users=1)
    assert first.read_bytes() == second.read_bytes()
    text = first.read_text(encoding="utf-8")
    for secret in ("alice", "bob", "zoë", "@x.edu", "Ådahl", "Bob, Jr."):
        assert secret not in text
    rows = list(csv.reader(first.open(encoding="utf-8")))
    assert rows[0] == list(USAGE_COLUMNS) and len(rows) == 4
    assert all(len(row[1]) == 32 for row in rows[1:])
    other_key = tmp_path / "c.csv"
    export_usage(replace(history, export_hmac_key=OTHER_KEY), other_key, pseudonymize=True, min_users=1)
    assert other_key.read_bytes() != first.read_bytes()


def test_pseudonymisation_refuses_without_a_key(history, tmp_path):
    with pytest.raises(ConfigurationError, match="EXPORT_HMAC_KEY"):
        export_usage(replace(history, export_hmac_key=None), tmp_path / "x.csv", pseudonymize=True)
    assert not (tmp_path / "x.csv").exists()


def test_department_export_suppresses_small_departments(history, tmp_path):
    out = tmp_path / "departments.csv"
    written, suppressed = export_departments(history, out, min_users=1)
    assert (written, suppressed) == (3, 0)
    assert export_departments(history, out, min_users=2) == (1, 2)  # Chemistry and Unknown have one user each
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "month,department,users,sessions,total_hours,gpu_hours,cpu_hours,gpu_device_hours"
    assert lines[1].split(",")[1:] == ["Physics", "2", "2", "1.50", "1.00", "0.50", "1.00"]


def test_cli_exports(history, tmp_path, monkeypatch):
    for key, value in history.database.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("EXPORT_HMAC_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["export", "usage"])
    assert result.exit_code == 0 and (tmp_path / "user_usage_stats.csv").exists()
    refused = CliRunner().invoke(app, ["export", "usage", "--pseudonymize", "--out", "p.csv"])
    assert refused.exit_code == 2 and "EXPORT_HMAC_KEY" in refused.output
    monkeypatch.setenv("EXPORT_HMAC_KEY", HMAC_KEY)
    ok = CliRunner().invoke(app, ["export", "usage", "--pseudonymize", "--out", "p.csv"])
    assert ok.exit_code == 0 and HMAC_KEY not in ok.output
    departments = CliRunner().invoke(app, ["export", "departments", "--min-users", "1"])
    assert departments.exit_code == 0 and "wrote 3 department-months" in departments.output


def test_snapshot_keeps_directory_values_and_the_fix_up_applies_after_it(db):
    # The snapshot holds what Graph returned; the Fellowships rule is applied on read, to all history.
    assert db.execute(
        "select department, job_title from analytics.users_history where email = 'bob@x.edu'"
    ).fetchall() == [("Fellowships", "GRAD TEACHING ASST, Physics")]
    assert db.execute(
        "select department, job_title from analytics.int_department_history where email = 'bob@x.edu'"
    ).fetchall() == [("Physics", "GRAD TEACHING ASST")]


@pytest.mark.parametrize(
    "weak",
    ["a", "k3y-kept-by-the-admin", "00" * 31, "aa" * 32, "not base64 at all, but long enough to pass a length check!!"],
)
def test_weak_hmac_keys_are_refused_in_one_line(history, tmp_path, weak):
    with pytest.raises(ConfigurationError, match="at least 32 random bytes") as refused:
        export_usage(replace(history, export_hmac_key=weak), tmp_path / "x.csv", pseudonymize=True)
    assert "secrets.token_hex(32)" in str(refused.value) and (len(weak) < 3 or weak not in str(refused.value))


def test_a_base64_key_is_accepted():
    import base64

    from loader.export import hmac_key

    assert hmac_key(base64.b64encode(bytes.fromhex(HMAC_KEY)).decode()) == bytes.fromhex(HMAC_KEY)


def test_pseudonymised_export_generalises_small_groups_and_dates_last_seen(history, tmp_path):
    out = tmp_path / "p.csv"
    export_usage(history, out, pseudonymize=True, min_users=2)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    # Chemistry (alice), Physics (bob) and no entry (zoë) each hold one user: none may be shown as it is.
    departments = Counter(row["department"] for row in rows)
    titles = Counter(row["jobtitle"] for row in rows)
    assert set(departments) == {"Other"} and set(titles) == {"Other"}
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["last_seen"]) for row in rows)
    assert all(row["fullname"].startswith("user-") for row in rows)  # with or without a directory entry


def test_generalisation_never_leaves_a_group_below_the_threshold():
    from hypothesis import given
    from hypothesis import strategies as st

    from loader.export import GENERALISED, generalise

    @given(st.lists(st.sampled_from(["A", "B", "C", "D", None]), min_size=0, max_size=40), st.integers(1, 6))
    def check(values, threshold):
        result = generalise(values, threshold)
        counts = Counter(result)
        small = [value for value, count in counts.items() if count < threshold]
        assert small == [] or len(values) < threshold or (small == [GENERALISED] and len(counts) == 1)
        assert all(after in (before, GENERALISED) for before, after in zip(values, result, strict=True))

    check()


def test_formula_cells_are_neutralised_in_every_export(database, tmp_path):
    """Directory values are anyone's to choose: none may run as a formula when the CSV is opened."""
    settings = settings_for(database, export_hmac_key=HMAC_KEY)
    hostile = ('=HYPERLINK("http://evil","x")', "+cmd|' /C calc'!A0", "@SUM(A1)")
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        load_batch(
            conn, settings, session("mallory@x.edu", "-jupyter-mallory", "cpu-1", PAST, 30, container_base="=cmd")
        )
        write_directory_entries(conn, settings.raw_schema, [found("mallory@x.edu", *hostile)])
    dbt(settings, *COMPLETE_BUILD_ARGS)
    outputs = {name: tmp_path / f"{name}.csv" for name in ("usage", "pseudonymised", "departments")}
    export_usage(settings, outputs["usage"], pseudonymize=False)
    export_usage(settings, outputs["pseudonymised"], pseudonymize=True, min_users=1)
    export_departments(settings, outputs["departments"], min_users=1)
    for name, path in outputs.items():
        cells = [cell for row in csv.reader(path.open(encoding="utf-8", newline="")) for cell in row]
        dangerous = [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(c)]
        assert dangerous == [], name
    usage = outputs["usage"].read_text(encoding="utf-8")
    assert "'=HYPERLINK" in usage and "'+cmd" in usage and "'@SUM(A1)" in usage and "'=cmd" in usage
    assert "'+cmd" in outputs["departments"].read_text(encoding="utf-8")
    assert "'+cmd" in outputs["pseudonymised"].read_text(encoding="utf-8")


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_group_export_has_its_columns_and_suppresses_small_groups(history, tmp_path):
    """The export's own work (columns, rounding, suppression, spreadsheet safety) on rows set here: what the view
    holds on given data is the business of the term and group tests."""
    from loader.export import GROUP_COLUMNS, export_groups

    with psycopg.connect(autocommit=True, **history.database.connect_kwargs()) as conn:
        conn.execute("create schema if not exists export_case")
        conn.execute(
            "create or replace view export_case.group_term_usage as select * from (values"
            " ('Fall 2026', date '2026-08-24', date '2026-12-18', 'cs101', 12, 40, 30.125::float8, 0::float8,"
            "  12.5::float8),"
            " ('Fall 2026', date '2026-08-24', date '2026-12-18', '=HYPERLINK(\"x\")', 6, 9, 2::float8,"
            "  1::float8, null::float8),"
            " ('Spring 2026', date '2026-01-20', date '2026-05-15', 'lab-x', 2, 3, 1::float8, 1::float8, 0::float8)"
            ") as t (term, starts_on, ends_on, group_name, users, sessions, total_hours, gpu_hours, active_hours)"
        )
    settings = replace(history, analytics_schema="export_case")
    out = tmp_path / "groups.csv"
    assert export_groups(settings, out, min_users=5) == (2, 1)  # lab-x: 2 users
    rows = list(csv.reader(out.open(encoding="utf-8", newline="")))
    assert rows[0] == list(GROUP_COLUMNS)
    assert rows[1] == ["Fall 2026", "2026-08-24", "2026-12-18", '\'=HYPERLINK("x")', "6", "9", "2.00", "1.00", ""]
    assert rows[2] == ["Fall 2026", "2026-08-24", "2026-12-18", "cs101", "12", "40", "30.13", "0.00", "12.50"]
    assert export_groups(settings, out, min_users=1) == (3, 0)

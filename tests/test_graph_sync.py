"""`users sync`: the real Graph client code against a local server that answers like Graph."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import psycopg
import pytest
from typer.testing import CliRunner

from loader.cli import app
from loader.directory import sync_users
from loader.errors import GraphError
from loader.graph_source import GraphClient, entry_from_graph_user
from stand_ins.graph import GraphApiStub, graph_user
from tests.dbt_helpers import load_batch, observation

TOKEN = "eyJ0eXAi.secret-graph-token.sig"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def observed(conn, settings, emails):
    load_batch(conn, settings, [observation(email, f"jupyter-{i}", "cpu-1", T0) for i, email in enumerate(emails)])


@pytest.fixture
def db(database):
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
        yield conn


def run_sync(settings, stub, *, refresh=False, sleeps=None, **client_options):
    client = GraphClient(
        stub.url,
        TOKEN,
        backoff_seconds=0.01,
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
        **client_options,
    )
    return sync_users(settings, client.lookup, refresh=refresh, requests_made=lambda: client.requests_made)


def directory(db):
    return db.execute(
        "select email, directory_status, full_name, department, job_title, graph_id, fetched_at is not null"
        " from raw.users order by email"
    ).fetchall()


def test_entry_from_graph_user_is_pure_and_typed():
    entry = entry_from_graph_user("a@x.edu", graph_user("a@x.edu", "Ann", "Physics", "", upn="ann@x.edu"))
    assert (entry.status, entry.full_name, entry.department, entry.job_title, entry.graph_id) == (
        "found",
        "Ann",
        "Physics",
        None,
        "id-a@x.edu",
    )
    with pytest.raises(ValueError):
        entry_from_graph_user("a@x.edu", {"displayName": "no id"})


def test_21_users_take_two_batch_requests(migrated, db):
    emails = [f"user{n:02d}@x.edu" for n in range(21)]
    observed(db, migrated, emails)
    with GraphApiStub([graph_user(email, f"User {n}", "Physics", "STUDENT") for n, email in enumerate(emails)]) as stub:
        summary = run_sync(migrated, stub)
    assert [len(batch) for batch in stub.batches] == [20, 1]
    assert summary.line() == "users sync: 21 asked, 21 found, 0 not found, 0 errors, 2 requests"
    assert all(header == f"Bearer {TOKEN}" for header in stub.authorization)
    run = db.execute(
        "select kind, status, pods_listed, rows_recorded, skip_reasons from raw.collector_runs"
        " where kind = 'users_sync'"
    ).fetchone()
    assert run == ("users_sync", "succeeded", 21, 21, {})


def test_per_item_404_then_mail_filter_then_not_found(migrated, db):
    emails = [f"user{n:02d}@x.edu" for n in range(21)]
    users = [graph_user(email, f"User {n}", "Physics", "STUDENT") for n, email in enumerate(emails[:19])]
    users.append(graph_user("user19@x.edu", "Nick Name", "Chemistry", "POSTDOC", upn="nn7@ad.x.edu"))  # mail != UPN
    observed(db, migrated, emails)
    with GraphApiStub(users) as stub:
        summary = run_sync(migrated, stub)
    # The follow-up look-up by mail shares the second request with the 21st user.
    assert [len(batch) for batch in stub.batches] == [20, 2, 1]
    assert "$filter=mail%20eq%20%27user19%40x.edu%27" in stub.batches[1][1]
    assert summary.counts == {"found": 20, "not_found": 1}
    rows = directory(db)
    assert rows[19] == ("user19@x.edu", "found", "Nick Name", "Chemistry", "POSTDOC", "id-user19@x.edu", True)
    assert rows[20] == ("user20@x.edu", "not_found", None, None, None, None, True)


def test_incremental_asks_only_missing_users_and_refresh_asks_all(migrated, db):
    observed(db, migrated, ["a@x.edu", "b@x.edu"])
    with GraphApiStub([graph_user("a@x.edu", "A", "Physics", "STUDENT")]) as stub:
        run_sync(migrated, stub)
        observed(db, migrated, ["c@x.edu"])
        db.execute("update raw.users set directory_status = 'error' where email = 'b@x.edu'")
        run_sync(migrated, stub)
        assert len(stub.batches) == 4  # first run: a and b, then b by mail; second run: the same for b and c
        assert stub.batches[2] == [
            "/users/b@x.edu?$select=id,displayName,department,jobTitle,mail,userPrincipalName",
            "/users/c@x.edu?$select=id,displayName,department,jobTitle,mail,userPrincipalName",
        ]
        assert run_sync(migrated, stub).asked == 0  # b and c are now not_found: not asked again
        assert run_sync(migrated, stub, refresh=True).asked == 3


def test_throttling_honours_retry_after(migrated, db):
    observed(db, migrated, ["a@x.edu", "b@x.edu"])
    users = [graph_user("a@x.edu", "A", "Physics", "STUDENT"), graph_user("b@x.edu", "B", "Math", "STUDENT")]
    sleeps = []
    with GraphApiStub(users) as stub:
        stub.faults = [("retry", 429, 7), "item429"]
        summary = run_sync(migrated, stub, sleeps=sleeps)
    assert sleeps == [7.0, 3.0]
    assert summary.counts == {"found": 2} and summary.requests == 3


def test_throttling_wait_is_bounded(migrated, db):
    observed(db, migrated, ["a@x.edu"])
    with GraphApiStub([]) as stub:
        stub.faults = [("retry", 429, 200), ("retry", 429, 200)]
        with pytest.raises(GraphError, match="beyond 300 s"):
            run_sync(migrated, stub, sleeps=[], max_wait_seconds=300)
    assert db.execute("select status from raw.collector_runs where kind = 'users_sync'").fetchone() == ("failed",)


def test_server_errors_are_retried_with_backoff(migrated, db):
    observed(db, migrated, ["a@x.edu"])
    sleeps = []
    with GraphApiStub([graph_user("a@x.edu", "A", "Physics", "STUDENT")]) as stub:
        stub.faults = [503, 500]
        assert run_sync(migrated, stub, sleeps=sleeps).counts == {"found": 1}
    assert sleeps == [0.01, 0.02]


def test_401_stops_with_a_one_line_message_and_keeps_earlier_batches(migrated, db):
    observed(db, migrated, [f"u{n:02d}@x.edu" for n in range(25)])
    with GraphApiStub([graph_user(f"u{n:02d}@x.edu", "U", "Physics", "STUDENT") for n in range(25)]) as stub:
        stub.faults = [None, 401]
        with pytest.raises(GraphError, match="token invalid or expired") as raised:
            run_sync(migrated, stub)
    assert TOKEN not in str(raised.value)
    assert db.execute("select count(*) from raw.users where directory_status = 'found'").fetchone()[0] == 20
    assert db.execute("select status, rows_recorded from raw.collector_runs where kind = 'users_sync'").fetchone() == (
        "failed",
        20,
    )


def test_malformed_response_is_a_clear_error_and_loses_nothing(migrated, db):
    observed(db, migrated, [f"u{n:02d}@x.edu" for n in range(25)])
    with GraphApiStub([graph_user(f"u{n:02d}@x.edu", "U", "Physics", "STUDENT") for n in range(25)]) as stub:
        stub.faults = [None, "malformed"]
        with pytest.raises(GraphError, match="malformed Graph batch response"):
            run_sync(migrated, stub)
    # The first batch's 20 users were written; the other 5 are still waiting for a look-up.
    assert db.execute("select count(*) from raw.users where directory_status = 'found'").fetchone()[0] == 20
    assert db.execute("select count(*) from raw.users where directory_status is null").fetchone()[0] == 5


def test_not_found_keeps_last_known_values(migrated, db):
    observed(db, migrated, ["a@x.edu"])
    with GraphApiStub([graph_user("a@x.edu", "A", "Physics", "STUDENT")]) as stub:
        run_sync(migrated, stub)
        stub.users = []
        run_sync(migrated, stub, refresh=True)
    assert directory(db) == [("a@x.edu", "not_found", "A", "Physics", "STUDENT", "id-a@x.edu", True)]


def test_cli_sync_never_shows_the_token(migrated, db, monkeypatch, caplog):
    observed(db, migrated, ["a@x.edu", "b@x.edu"])
    with GraphApiStub([graph_user("a@x.edu", "A", "Physics", "STUDENT")]) as stub:
        for key, value in migrated.database.environment().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("ACCESS_TOKEN", TOKEN)
        monkeypatch.setenv("GRAPH_BASE_URL", stub.url)
        monkeypatch.setenv("AZURE_CLIENT_SECRET", "client-secret-value")
        with caplog.at_level(logging.DEBUG):
            ok = CliRunner().invoke(app, ["users", "sync"])
            stub.faults = [401]
            failed = CliRunner().invoke(app, ["users", "sync", "--refresh"])
    assert ok.exit_code == 0 and "users sync: 2 asked, 1 found, 1 not found, 0 errors, 2 requests" in ok.output
    assert failed.exit_code == 1 and "token invalid or expired" in failed.output
    everything = ok.output + failed.output + caplog.text
    assert (
        TOKEN not in everything and "secret-graph-token" not in everything and "client-secret-value" not in everything
    )


def test_missing_credentials_are_a_clear_error(migrated, monkeypatch):
    for key, value in migrated.database.environment().items():
        monkeypatch.setenv(key, value)
    for key in ("ACCESS_TOKEN", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(key, raising=False)
    result = CliRunner().invoke(app, ["users", "sync"])
    assert result.exit_code == 2 and "ACCESS_TOKEN" in result.output
    device = CliRunner().invoke(app, ["users", "sync", "--device-code"])
    assert device.exit_code == 2 and "AZURE_CLIENT_ID" in device.output


def test_one_unstorable_user_is_an_error_and_the_batch_and_later_syncs_go_on(migrated, db):
    emails = [f"u{n:02d}@x.edu" for n in range(25)]
    observed(db, migrated, emails)
    users = [graph_user(email, f"U {n}", "Physics", "STUDENT") for n, email in enumerate(emails)]
    users[3]["displayName"] = "Mallory\u0000Tables"
    del users[7]["id"]
    with GraphApiStub(users) as stub:
        first = run_sync(migrated, stub)
        assert first.counts == {"found": 23, "error": 2}
        # The next default sync asks only the two again, and gets past them as well.
        second = run_sync(migrated, stub)
    assert second.asked == 2 and second.counts == {"error": 2}
    rows = dict(db.execute("select email, directory_status from raw.users").fetchall())
    assert rows["u03@x.edu"] == rows["u07@x.edu"] == "error" and sum(v == "found" for v in rows.values()) == 23
    runs = db.execute(
        "select status, skip_reasons from raw.collector_runs where kind = 'users_sync' order by id"
    ).fetchall()
    assert runs == [("succeeded", {"error": 2}), ("succeeded", {"error": 2})]


def test_unreachable_sign_in_is_one_line(migrated, monkeypatch):
    for key, value in migrated.database.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ACCESS_TOKEN", raising=False)
    monkeypatch.setenv("AZURE_TENANT_ID", "tenant")
    monkeypatch.setenv("AZURE_CLIENT_ID", "client")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "client-secret-value")
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://127.0.0.1:1")
    result = CliRunner().invoke(app, ["users", "sync"])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and "sign-in" in result.output
    assert "client-secret-value" not in result.output

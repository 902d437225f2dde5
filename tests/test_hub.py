"""The hub's own view (spec 3.7): JupyterHub's user and group models into rows (pure), then collections against a real
JupyterHub (stand_ins.jupyterhub) whose users, groups, servers and activity the tests drive through its REST API."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from typer.testing import CliRunner

from loader.cli import app
from loader.hub_source import memberships_from_groups, servers_from_users
from stand_ins import jupyterhub
from stand_ins.prometheus import free_port
from tests.conftest import needs
from tests.dbt_helpers import dbt
from tests.pod_factory import pod_list, running_pod_with_conditions

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
needs_jupyterhub = needs(jupyterhub.available(), jupyterhub.INSTALL_HINT)


def user_model(name: str, servers: dict) -> dict:
    """A user model as GET /hub/api/users returns it to a token with read:users and read:servers."""
    return {"kind": "user", "name": name, "admin": False, "groups": [], "server": None, "pending": None,
            "last_activity": None, "servers": servers}  # fmt: skip


def server_model(last_activity: object = "2026-11-02T11:58:00.123456Z", **changes: object) -> dict:
    return {"name": "", "ready": True, "pending": None, "started": "2026-11-02T09:00:00Z", "stopped": False,
            "last_activity": last_activity, "url": "/user/x/", **changes}  # fmt: skip


def test_every_server_of_every_user_becomes_a_row():
    users = [
        user_model("alice", {"": server_model(), "gpu": server_model("2026-11-02T11:00:00Z", name="gpu")}),
        user_model("bob", {"": server_model(None, ready=False, pending="spawn")}),
        user_model("carol", {}),
    ]
    servers, skipped = servers_from_users(users, NOW)
    assert not skipped
    assert [(s.user_name, s.server_name, s.last_activity, s.pending, s.ready) for s in servers] == [
        ("alice", "", datetime(2026, 11, 2, 11, 58, 0, 123456, tzinfo=UTC), None, True),
        ("alice", "gpu", datetime(2026, 11, 2, 11, 0, tzinfo=UTC), None, True),
        ("bob", "", None, "spawn", False),
    ]


@pytest.mark.parametrize(
    ("user", "reason"),
    [
        ("not a user", "expected an object"),
        (user_model("", {}), "expected a name"),
        (user_model("x" * 300, {}), "characters long"),
        (user_model("eve", ["default"]), "expected an object"),
        (user_model("eve", {"": server_model("2126-01-01T00:00:00Z")}), "outside"),
        (user_model("eve", {"": server_model("last tuesday")}), "last_activity"),
        (user_model("eve", {"": server_model(started=12)}), "started"),
        (user_model("eve", {"": server_model(pending="x" * 500)}), "characters long"),
        (user_model("eve", {"s" * 300: server_model()}), "server name is too long"),
    ],
)
def test_a_hostile_user_or_server_is_skipped_and_counted_its_neighbours_kept(user, reason):
    servers, skipped = servers_from_users([user, user_model("alice", {"": server_model()})], NOW)
    assert [s.user_name for s in servers] == ["alice"]
    assert sum(skipped.values()) == 1 and reason in next(iter(skipped))


def test_memberships_come_from_group_models_and_a_hostile_group_is_counted():
    groups = [
        {"kind": "group", "name": "cs101", "users": ["alice", "bob"], "properties": {}},
        {"kind": "group", "name": "lab-x", "users": [], "properties": {}},
        {"kind": "group", "name": "broken", "users": "alice"},
        {"kind": "group", "name": "", "users": ["alice"]},
    ]
    members, skipped = memberships_from_groups(groups)
    assert members == {("cs101", "alice"), ("cs101", "bob")}
    assert sum(skipped.values()) == 2


# Against a real JupyterHub.


@pytest.fixture(scope="module")
def hub():
    with jupyterhub.RealJupyterHub() as running:
        yield running


def hub_pod(user: str, started: datetime) -> dict:
    """The pod KubeSpawner makes for `user`'s default server (hub username in the annotation, as z2jh sets it)."""
    stamp = started.isoformat().replace("+00:00", "Z")
    ready = (started + timedelta(seconds=20)).isoformat().replace("+00:00", "Z")
    document = running_pod_with_conditions(f"jupyter-{user}", f"uid-{user}", stamp, stamp, ready)
    document["metadata"]["annotations"] = {"hub.jupyter.org/username": user}
    document["metadata"]["labels"].pop("hub.jupyter.org/servername")
    document["metadata"]["annotations"].pop("hub.jupyter.org/servername", None)
    document["spec"]["containers"][0]["env"] = [{"name": "JUPYTERHUB_USER", "value": user}]
    return document


def collect(database, hub_url: str, token: str, pods: list[dict], at: datetime, tmp_path, *extra: str):
    path = tmp_path / "pods.json"
    path.write_text(json.dumps(pod_list(*pods)))
    environment = {**database.environment(), "HUB_API_URL": hub_url, "HUB_API_TOKEN": token,
                   "COLLECT_EMAIL_DOMAIN": "example.edu"}  # fmt: skip
    result = CliRunner().invoke(
        app, ["collect", "--from-file", str(path), "--at", at.isoformat(), "--json", *extra], env=environment
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.output


@needs_jupyterhub
@pytest.mark.dbt
def test_active_hours_and_groups_come_from_a_real_hub(hub, migrated, database, tmp_path):
    # 450 users (three pages of the hub's 200), two of them with servers; two groups.
    hub.create_users("alice", "bob", "carol", *(f"student{n:03d}" for n in range(447)))
    hub.create_group("cs101", "alice", "carol")
    hub.create_group("lab-x", "bob")
    hub.start_server("alice")
    hub.start_server("bob")
    started = datetime.now(UTC).replace(microsecond=0)
    pods = [hub_pod("alice", started - timedelta(seconds=30)), hub_pod("bob", started - timedelta(seconds=30))]
    first = started + timedelta(minutes=1)
    summaries = []
    for step in range(7):  # collections every 5 minutes for 30 minutes
        at = first + timedelta(minutes=5 * step)
        if step in (2, 4):  # alice works in the 5 minutes before the 3rd and the 5th collection
            hub.post_activity("alice", at - timedelta(minutes=2))
        summaries.append(collect(database, hub.api_url, hub.reader_token, pods, at, tmp_path)[0])
    assert [s["hub_servers"] for s in summaries] == [2] * 7
    assert [s["hub_memberships_recorded"] for s in summaries] == [True] + [False] * 6
    hub.remove_from_group("cs101", "carol")
    changed, _ = collect(database, hub.api_url, hub.reader_token, pods, first + timedelta(minutes=35), tmp_path)
    assert changed["hub_memberships_recorded"] is True

    dbt(migrated, "build")
    with psycopg.connect(**database.connect_kwargs()) as conn:
        sessions = dict(conn.execute("select user_email, active_hours from analytics.user_sessions").fetchall())
        groups = conn.execute(
            "select group_name, users, total_hours, active_hours from analytics.group_usage order by group_name"
        ).fetchall()
        departments = conn.execute(
            "select sum(total_hours), sum(active_hours) from analytics.department_usage"
        ).fetchone()
    # Alice's activity advanced across two 5-minute stretches; Bob's never after his start.
    assert sessions["alice@example.edu"] == pytest.approx(Decimal(600) / 3600, abs=Decimal("0.0001"))
    assert sessions["bob@example.edu"] == 0
    # Each user is in one group at the start of their session: the groups add up to the departments.
    assert [g[0] for g in groups] == ["cs101", "lab-x"]
    assert sum(g[2] for g in groups) == departments[0] and sum(g[3] for g in groups) == departments[1]
    assert groups[0][1] == 1 and groups[1][1] == 1


@needs_jupyterhub
def test_a_replay_reads_saved_hub_answers(hub, migrated, database, tmp_path):
    hub.create_users("dora")
    hub.start_server("dora")
    saved = tmp_path / "hub.json"
    saved.write_text(json.dumps(hub.answers()))
    at = datetime.now(UTC) + timedelta(minutes=1)
    pods = [hub_pod("dora", at - timedelta(minutes=3))]
    summary, _ = collect(
        database, "http://127.0.0.1:1/hub/api", "unused", pods, at, tmp_path, "--hub-from-file", str(saved)
    )
    with psycopg.connect(**database.connect_kwargs()) as conn:
        recorded = conn.execute("select user_name, ready from raw.hub_servers").fetchall()
    assert ("dora", True) in recorded and summary["hub_servers"] == len(recorded)


@needs_jupyterhub
def test_a_token_without_the_group_scopes_costs_the_memberships_only(migrated, database, tmp_path, caplog):
    scopes = [s for s in jupyterhub.READER_SCOPES if "groups" not in s]
    with jupyterhub.RealJupyterHub(reader_scopes=scopes) as limited:
        limited.create_users("erin")
        limited.start_server("erin")
        at = datetime.now(UTC) + timedelta(minutes=1)
        with caplog.at_level(logging.WARNING):
            summary, output = collect(
                database, limited.api_url, limited.reader_token, [hub_pod("erin", at)], at, tmp_path
            )
    assert (summary["rows_recorded"], summary["hub_servers"], summary["hub_memberships_recorded"]) == (1, 1, None)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "no group memberships" in warnings[0] and "403" in warnings[0]
    assert limited.reader_token not in caplog.text + output


@needs_jupyterhub
@pytest.mark.parametrize("problem", ["down", "wrong token", "not a hub"])
def test_a_hub_that_is_down_or_refuses_costs_one_line_never_the_collection(
    hub, migrated, database, tmp_path, caplog, problem
):
    url, token = {
        "down": (f"http://127.0.0.1:{free_port()}/hub/api", hub.reader_token),
        "wrong token": (hub.api_url, "0123456789abcdef-not-the-token"),
        "not a hub": (hub.api_url.replace("/hub/api", "/hub/nothing"), hub.reader_token),
    }[problem]
    at = datetime.now(UTC) + timedelta(minutes=1)
    with caplog.at_level(logging.WARNING):
        summary, output = collect(database, url, token, [hub_pod("frank", at)], at, tmp_path)
    assert summary["rows_recorded"] == 1 and summary["hub_servers"] is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("no view of the hub in this run")
    assert token not in caplog.text + output

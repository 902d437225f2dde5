"""`jupyterhub-metrics export xdmod`: sessions as Open XDMoD Cloud-realm events, in its generic JSON event format
(one JSON object per line; the fields of xdmod's etl_schemas.d/cloud/event.schema.json, documented in its
docs/cloud.md), so a centre that accounts in XDMoD sees the hub as a cloud resource: each server a VM-like
instance with the cores, memory and GPUs its pod requested.

Per closed session (its last observation more than the session gap before its cluster's latest collection, so no
observation can extend it): START at its first observation, a STATE_REPORT at every UTC midnight it runs across
(XDMoD's heartbeat, so each day sees the instance running), STOP at its last observation. The events of a session
are always the same (ids from the session id), so overlapping exports repeat lines rather than add sessions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from loader.config import Settings
from loader.db import connect
from loader.errors import LoaderError
from loader.export import PSEUDONYM_LENGTH, hmac_key, pseudonym, written_beside

INSTANCE_PREFIX = "jhm-"
RECORD_TYPE = "ACCOUNTING"
MIB = 2**20


@dataclass(frozen=True)
class ClosedSession:
    session_id: str
    user_email: str
    department: str
    node_name: str
    session_start: datetime
    session_end: datetime
    container_base: str | None
    container_version: str | None
    node_type: str
    cpu_request_cores: float | None
    memory_request_bytes: int | None
    gpu_count: int | None
    gpu_model_label: str | None


def stamp(moment: datetime) -> str:
    """RFC 3339 in UTC, to the second, as XDMoD's schema describes event_time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def instance_type(session: ClosedSession) -> dict[str, Any]:
    """What the pod was given: cores (requested, rounded up), memory in MiB, GPUs and their model."""
    kind: dict[str, Any] = {}
    parts = [f"jupyter {session.node_type}"]
    if session.gpu_count:
        parts.append(f"{session.gpu_count} x {session.gpu_model_label or 'GPU'}")
    if session.cpu_request_cores is not None:
        kind["cpu"] = max(1, math.ceil(float(session.cpu_request_cores)))
        parts.append(f"{kind['cpu']} cores")
    if session.memory_request_bytes is not None:
        kind["memory"] = round(session.memory_request_bytes / MIB)
        parts.append(f"{kind['memory']} MB")
    if session.gpu_count is not None:
        kind["gpus"] = session.gpu_count
        if session.gpu_count:
            kind["gpu_model"] = session.gpu_model_label or "unknown"
    return {"name": ", ".join(parts), **kind}


def midnights(start: datetime, end: datetime) -> Iterator[datetime]:
    """Every UTC midnight strictly inside (start, end)."""
    moment = datetime.combine(start.astimezone(UTC).date() + timedelta(days=1), time(0), tzinfo=UTC)
    while moment < end:
        yield moment
        moment += timedelta(days=1)


def events(session: ClosedSession, user: str) -> Iterator[dict[str, Any]]:
    """The session's events: START, a STATE_REPORT per midnight it runs across, STOP."""
    common = {
        "instance_id": INSTANCE_PREFIX + session.session_id,
        "record_type": RECORD_TYPE,
        "account": session.department,
        "user": user,
        "node_controller": session.node_name,
        "image_type": ":".join(filter(None, [session.container_base, session.container_version])) or "unknown",
        "instance_type": instance_type(session),
        "public_ip": None,
        "private_ip": None,
    }
    yield {"event_type": "START", "event_time": stamp(session.session_start), **common}
    for midnight in midnights(session.session_start, session.session_end):
        yield {"event_type": "STATE_REPORT", "event_time": stamp(midnight), **common}
    yield {"event_type": "STOP", "event_time": stamp(session.session_end), **common}


def closed_sessions(settings: Settings, since: date | None) -> list[ClosedSession]:
    """The sessions that ended on or after `since` (UTC) and can no longer grow, oldest end first."""
    schema = sql.Identifier(settings.analytics_schema)
    query = sql.SQL(
        "with latest_collections as ("
        " select cluster, max(observed_at) as latest from {schema}.stg_raw__collector_runs"
        " where run_kind = 'collect' and run_status = 'succeeded' group by cluster),"
        " gap as (select value::integer * interval '1 minute' as length from {schema}.rules_in_force"
        " where rule = 'session_gap_minutes')"
        " select sessions.session_id, sessions.user_email, coalesce(departments.department, 'Unknown'),"
        " sessions.node_name, sessions.session_start, sessions.session_end, sessions.container_base,"
        " sessions.container_version, sessions.node_type, sessions.cpu_request_cores,"
        " sessions.memory_request_bytes, sessions.gpu_count, sessions.gpu_model_label"
        " from {schema}.user_sessions as sessions"
        " left join {schema}.department_sessions as departments using (session_id)"
        " left join latest_collections on latest_collections.cluster is not distinct from sessions.cluster"
        " cross join gap"
        " where sessions.session_end + gap.length < coalesce(latest_collections.latest, now())"
        " and (%(since)s::date is null or (sessions.session_end at time zone 'UTC')::date >= %(since)s::date)"
        " order by sessions.session_end, sessions.session_id"
    ).format(schema=schema)
    with connect(settings.database) as conn:
        try:
            rows = conn.execute(query, {"since": since}).fetchall()
        except psycopg.errors.UndefinedTable:
            raise LoaderError("the marts are not built; run `jupyterhub-metrics build` first") from None
    return [ClosedSession(*row) for row in rows]


def export_xdmod(settings: Settings, out: Path, *, since: date | None, pseudonymize: bool) -> tuple[int, int]:
    """Writes the events (JSON lines) beside `out`, then renames; (sessions, events) written."""
    key = hmac_key(settings.export_hmac_key) if pseudonymize else b""
    sessions = closed_sessions(settings, since)
    written = 0
    with written_beside(out) as stream:
        for session in sessions:
            user = pseudonym(key, session.user_email)[:PSEUDONYM_LENGTH] if pseudonymize else session.user_email
            for event in events(session, user):
                stream.write(json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n")
                written += 1
    return len(sessions), written

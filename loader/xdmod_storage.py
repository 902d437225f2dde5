"""`jupyterhub-metrics export xdmod-storage`: what people keep, as Open XDMoD Storage-realm records (its documented
JSON storage format: a JSON array of objects with resource, mountpoint, user, pi, dt, soft_threshold,
hard_threshold, file_count, logical_usage and physical_usage), so a centre that accounts in XDMoD sees the hub's
homes there beside its other filesystems (`xdmod-shredder -r RESOURCE -f storage -d DIR`).

One record per user and complete UTC day (storage_days: the size at day end, the last known where nothing read a
volume that day), its time the day's last second. XDMoD's user and PI are system usernames: here the user's email
(a keyed HMAC with --pseudonymize), the PI the user too (the hub knows no PI). The quota is both thresholds (the hub
knows one limit; 0 where none is known); logical and physical usage are the bytes used (the hub sees no
compression). Volumes whose owner matches nobody have no user and are left out, counted."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from psycopg import sql

from loader.config import Settings
from loader.export import PSEUDONYM_LENGTH, hmac_key, pseudonym, query_marts, written_beside


@dataclass(frozen=True)
class StorageDay:
    day: date
    user_email: str
    used_bytes: int
    limit_bytes: int | None
    file_count: int | None


def record(row: StorageDay, *, user: str, resource: str, mountpoint: str) -> dict[str, Any]:
    """One XDMoD storage record: a pure function of a storage day."""
    limit = int(row.limit_bytes or 0)
    return {
        "resource": resource,
        "mountpoint": mountpoint,
        "user": user,
        "pi": user,
        "dt": datetime.combine(row.day, time(23, 59, 59), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "soft_threshold": limit,
        "hard_threshold": limit,
        "file_count": int(row.file_count or 0),
        "logical_usage": int(row.used_bytes),
        "physical_usage": int(row.used_bytes),
    }


def storage_days(settings: Settings, since: date | None) -> tuple[list[StorageDay], int]:
    """Each known owner's complete days (before today, UTC) from `since` (else the latest complete day), and how many
    volume-days of owners nobody matches were left out."""
    schema = sql.Identifier(settings.analytics_schema)
    today = "(now() at time zone 'UTC')::date"
    first = sql.SQL(
        "coalesce(%(since)s::date, (select max(storage_day) from {schema}.storage_days where storage_day < {today}))"
    ).format(schema=schema, today=sql.SQL(today))
    query = sql.SQL(
        "select storage_day, user_email, used_bytes, limit_bytes, file_count from {schema}.storage_days"
        " where storage_day >= {first} and storage_day < {today} and used_bytes is not null"
        " order by storage_day, user_email"
    ).format(schema=schema, first=first, today=sql.SQL(today))
    unmatched = sql.SQL(
        "select count(*) from {schema}.int_storage_volume_days"
        " where user_email is null and storage_day >= {first} and storage_day < {today}"
    ).format(schema=schema, first=first, today=sql.SQL(today))
    rows = query_marts(settings, query, {"since": since})
    left_out = query_marts(settings, unmatched, {"since": since})[0][0]
    return [StorageDay(*row) for row in rows], int(left_out)


def export_xdmod_storage(
    settings: Settings, out: Path, *, since: date | None, resource: str, mountpoint: str, pseudonymize: bool
) -> tuple[int, int]:
    """Writes the records (one JSON array) beside `out`, then renames; (records written, volume-days left out)."""
    key = hmac_key(settings.export_hmac_key) if pseudonymize else b""
    days, left_out = storage_days(settings, since)
    records = [
        record(
            day,
            user=pseudonym(key, day.user_email)[:PSEUDONYM_LENGTH] if pseudonymize else day.user_email,
            resource=resource,
            mountpoint=mountpoint,
        )
        for day in days
    ]
    with written_beside(out) as stream:
        json.dump(records, stream, ensure_ascii=False, indent=1, sort_keys=True)
        stream.write("\n")
    return len(records), left_out

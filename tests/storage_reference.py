"""An independent reference for the storage marts (spec 3.8), in plain Python: from the collections as they were made
(each with its moment, storage rows and the names its pods showed), never from the models' SQL.

A volume's day keeps, per figure, the reading of the day's latest collection that had one, and the day's largest
use; a volume has every day from its first reading to its latest, a day without a reading carrying the last known
figure. Its owner is the email its PVC gave, else the one user who showed its name; GB-months are GiB / days in the
month per day."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from loader.storage import NameShown, StorageRow

GIB = 2**30
FIGURES = ("used_bytes", "capacity_bytes", "quota_bytes", "file_count")


@dataclass(frozen=True)
class Collection:
    moment: datetime
    rows: Sequence[StorageRow]
    names: frozenset[NameShown]


def volume_key(row: StorageRow) -> tuple:
    return (row.layout, row.cluster, row.namespace, row.volume_name)


def name_owners(names: Iterable[NameShown]) -> dict[str, str | None]:
    users: dict[str, set[str]] = {}
    for name in names:
        for shown in (name.escaped_name, name.hub_username):
            users.setdefault(shown, set()).add(name.user_email)
    return {shown: next(iter(emails)) if len(emails) == 1 else None for shown, emails in users.items()}


def readings_per_day(collections: Iterable[Collection]) -> dict[tuple, dict[date, dict[str, Any]]]:
    """Per volume and UTC day, what the day's readings say, whatever order the collections arrived in."""
    days: dict[tuple, dict[date, dict[str, Any]]] = {}
    for collection in sorted(collections, key=lambda c: c.moment):
        day = collection.moment.date()
        for row in collection.rows:
            stored = days.setdefault(volume_key(row), {}).setdefault(day, {"largest_used_bytes": None})
            for name in FIGURES:
                if getattr(row, name) is not None:
                    stored[name] = getattr(row, name)
            if row.used_bytes is not None:
                stored["largest_used_bytes"] = max(stored["largest_used_bytes"] or 0, row.used_bytes)
            if row.last_modified_at is not None:
                stored["last_modified_at"] = max(
                    stored.get("last_modified_at") or row.last_modified_at, row.last_modified_at
                )
            for name in ("owner_name", "user_email", "server_name"):
                if getattr(row, name) is not None:
                    stored[name] = getattr(row, name)
    return days


def days_in_month(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def volume_days(collections: Sequence[Collection]) -> list[dict[str, Any]]:
    """Every volume's every day, as int_storage_volume_days holds them."""
    owners = name_owners(name for collection in collections for name in collection.names)
    result = []
    for key, readings in readings_per_day(collections).items():
        carried: dict[str, Any] = {}
        latest_row: dict[str, Any] = {}
        day, last = min(readings), max(readings)
        while day <= last:
            read = readings.get(day)
            if read is not None:
                latest_row = read
                carried.update({name: read[name] for name in (*FIGURES, "last_modified_at") if name in read})
            used = carried.get("used_bytes")
            day_largest = read.get("largest_used_bytes") if read else None
            result.append(
                {
                    "layout": key[0],
                    "cluster": key[1],
                    "namespace": key[2],
                    "volume_name": key[3],
                    "storage_day": day,
                    "owner_name": latest_row.get("owner_name"),
                    "user_email": latest_row.get("user_email") or owners.get(latest_row.get("owner_name")),
                    "server_name": latest_row.get("server_name"),
                    "used_bytes": used,
                    "largest_used_bytes": used if day_largest is None else day_largest,
                    "capacity_bytes": carried.get("capacity_bytes"),
                    "quota_bytes": carried.get("quota_bytes"),
                    "file_count": carried.get("file_count"),
                    "last_modified_at": carried.get("last_modified_at"),
                    "used_carried_forward": read is None or read.get("used_bytes") is None,
                    "gb_months": None if used is None else used / GIB / days_in_month(day),
                }
            )
            day += timedelta(days=1)
    return result


def storage_cost(gb_months: float | None, day: date, rates: Sequence[tuple[date, date, Decimal]]) -> float | None:
    """GB-months x the day's storage rate (valid_from inclusive, valid_to exclusive); None without one."""
    rate = next((price for start, end, price in rates if start <= day < end), None)
    return None if gb_months is None or rate is None else gb_months * float(rate)


def storage_days(days: Iterable[Mapping[str, Any]], rates: Sequence[tuple[date, date, Decimal]]) -> list[dict]:
    """Per owner and day: volumes, bytes at day end, GB-months and their cost."""
    per_user: dict[tuple, dict[str, Any]] = {}
    for row in days:
        if row["user_email"] is None:
            continue
        total = per_user.setdefault(
            (row["storage_day"], row["user_email"]),
            {
                "storage_day": row["storage_day"],
                "user_email": row["user_email"],
                "volumes": 0,
                "used_bytes": None,
                "gb_months": None,
            },
        )
        total["volumes"] += 1
        if row["used_bytes"] is not None:
            total["used_bytes"] = (total["used_bytes"] or 0) + row["used_bytes"]
            total["gb_months"] = (total["gb_months"] or 0) + row["gb_months"]
    for total in per_user.values():
        total["storage_cost"] = storage_cost(total["gb_months"], total["storage_day"], rates)
    return list(per_user.values())


def monthly_gb_months(days: Iterable[Mapping[str, Any]]) -> dict[tuple[date, str], float]:
    """GB-months per (month, owner)."""
    totals: dict[tuple[date, str], float] = {}
    for row in days:
        if row["user_email"] is not None and row["gb_months"] is not None:
            month = row["storage_day"].replace(day=1)
            totals[(month, row["user_email"])] = totals.get((month, row["user_email"]), 0.0) + row["gb_months"]
    return totals


def term_gb_months(days: Iterable[Mapping[str, Any]], terms: Iterable[tuple[str, date, date]]) -> dict[str, float]:
    """GB-months per term (its days, both ends included)."""
    totals: dict[str, float] = {}
    for name, starts_on, ends_on in terms:
        for row in days:
            if (
                row["user_email"] is not None
                and row["gb_months"] is not None
                and starts_on <= row["storage_day"] <= ends_on
            ):
                totals[name] = totals.get(name, 0.0) + row["gb_months"]
    return totals


def stale_homes(
    days: Sequence[Mapping[str, Any]], last_sessions: Mapping[str, datetime], now: datetime, stale_days: int
) -> dict[tuple, str]:
    """The volumes still there (read on their cluster's latest day) whose owner is unknown, has no session, or last
    ended one more than stale_days ago: key -> reason."""
    latest: dict[tuple, dict[str, Any]] = {}
    for row in days:
        key = (row["layout"], row["cluster"], row["namespace"], row["volume_name"])
        if key not in latest or row["storage_day"] > latest[key]["storage_day"]:
            latest[key] = row
    latest_read: dict[tuple, date] = {}
    for (layout, cluster, _, _), row in latest.items():
        latest_read[(layout, cluster)] = max(latest_read.get((layout, cluster), row["storage_day"]), row["storage_day"])
    stale = {}
    for key, row in latest.items():
        if row["storage_day"] != latest_read[(key[0], key[1])]:
            continue
        owner = row["user_email"]
        if owner is None:
            stale[key] = "owner unknown"
        elif owner not in last_sessions:
            stale[key] = "no session recorded"
        elif last_sessions[owner] < now - timedelta(days=stale_days):
            stale[key] = f"last session over {stale_days} days ago"
    return stale

"""CSV exports of the marts: the usage export (optionally pseudonymised) and the department rollup."""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import tempfile
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from loader.config import Settings
from loader.db import connect
from loader.errors import ConfigurationError, LoaderError

USAGE_COLUMNS = (
    "fullname",
    "email",
    "department",
    "jobtitle",
    "gpu_hours",
    "cpu_hours",
    "total_hours",
    "total_sessions",
    "last_seen",
    "favorite_container",
)
DEPARTMENT_COLUMNS = (
    "month",
    "department",
    "users",
    "sessions",
    "total_hours",
    "gpu_hours",
    "cpu_hours",
    "gpu_device_hours",
)


def pseudonym(key: str, email: str) -> str:
    """Stable for a key and an email; without the key it cannot be linked back to the person."""
    return hmac.new(key.encode("utf-8"), email.lower().encode("utf-8"), hashlib.sha256).hexdigest()


def pseudonymize_usage_row(row: Sequence[Any], key: str) -> tuple[Any, ...]:
    values = dict(zip(USAGE_COLUMNS, row, strict=True))
    digest = pseudonym(key, values["email"])
    values["email"] = digest[:32]
    values["fullname"] = f"user-{digest[:10]}" if values["fullname"] is not None else None
    return tuple(values[column] for column in USAGE_COLUMNS)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, Decimal):
        if not value.is_finite():  # NaN or infinity never reach the marts' rounded hours; never crash on them
            return ""
        exponent = value.as_tuple().exponent
        return f"{value:.2f}" if isinstance(exponent, int) and exponent < 0 else str(value)
    return str(value)


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Writes to a temporary file beside `path`, then renames: a failed export leaves no half file."""
    path = path.resolve()
    count = 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(header)
            for row in rows:
                writer.writerow([_cell(value) for value in row])
                count += 1
        os.replace(temporary, path)
    except OSError as error:
        raise LoaderError(f"cannot write {path}: {error.strerror}") from None
    return count


def _query(settings: Settings, query: sql.Composed) -> list[tuple]:
    with connect(settings.database) as conn:
        try:
            return conn.execute(query).fetchall()
        except psycopg.errors.UndefinedTable:
            raise LoaderError(
                f"the marts are not built in schema {settings.analytics_schema}; run `jupyterhub-metrics build` first"
            ) from None


def export_usage(settings: Settings, out: Path, *, pseudonymize: bool) -> int:
    key = settings.export_hmac_key or ""
    if pseudonymize and not key:
        raise ConfigurationError(
            "--pseudonymize needs EXPORT_HMAC_KEY (a secret kept by the admin, the same for every export)"
        )
    rows = _query(
        settings,
        sql.SQL("select {} from {}.user_usage_stats order by email").format(
            sql.SQL(", ").join(map(sql.Identifier, USAGE_COLUMNS)), sql.Identifier(settings.analytics_schema)
        ),
    )
    if pseudonymize:
        rows = sorted((pseudonymize_usage_row(row, key) for row in rows), key=lambda row: row[1])
    return write_csv(out, USAGE_COLUMNS, rows)


def export_departments(settings: Settings, out: Path, *, min_users: int) -> tuple[int, int]:
    rows = _query(
        settings,
        sql.SQL(
            "select month, department, users, sessions, round(total_hours::numeric, 2), round(gpu_hours::numeric, 2),"
            " round(cpu_hours::numeric, 2), round(gpu_device_hours::numeric, 2)"
            " from {}.department_usage order by month, department"
        ).format(sql.Identifier(settings.analytics_schema)),
    )
    kept = [row for row in rows if row[2] >= min_users]
    return write_csv(out, DEPARTMENT_COLUMNS, kept), len(rows) - len(kept)

"""CSV exports of the marts: the usage export (optionally pseudonymised) and the department rollup."""

from __future__ import annotations

import base64
import binascii
import contextlib
import csv
import hashlib
import hmac
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import psycopg
from psycopg import sql

from loader.config import Settings
from loader.db import connect
from loader.errors import ConfigurationError, LoaderError

# The columns of spec 4, in its order; then, appended so readers of those ten are undisturbed (issue 20), the time
# the hub saw activity and the median start-up time. user_usage_stats has exactly these (a test checks).
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
    "active_hours",
    "median_startup_seconds",
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
# Per academic term and hub group (group_term_usage): what a course or lab used in a term.
GROUP_COLUMNS = (
    "term",
    "starts_on",
    "ends_on",
    "group_name",
    "users",
    "sessions",
    "total_hours",
    "gpu_hours",
    "active_hours",
)
# The offboarding and archive list (stale_homes), largest first: what to archive, whom to write to, why.
STALE_HOME_COLUMNS = (
    "volume_name",
    "layout",
    "cluster",
    "namespace",
    "owner_name",
    "user_email",
    "full_name",
    "department",
    "last_session",
    "days_since_last_session",
    "stale_reason",
    "used_bytes",
    "limit_bytes",
    "file_count",
    "last_modified_at",
)
# Allocations as of today (allocation_status), with the figure a ColdFront admin enters as the allocation's usage:
# ColdFront's attribute for it, and the value (GPU hours as accelerator hours, core hours as core hours; storage has
# no usage attribute of ColdFront's own, so its GB-months are left for the admin's).
ALLOCATION_COLUMNS = (
    "allocation_name",
    "grantee_kind",
    "grantee",
    "resource",
    "starts_on",
    "ends_on",
    "amount",
    "used",
    "remaining",
    "percent_used",
    "burn_rate_per_day",
    "projected_exhaustion_on",
    "status",
    "coldfront_attribute",
    "coldfront_usage",
)
COLDFRONT_ATTRIBUTES = {"gpu_hours": "Accelerator Usage (Hours)", "cpu_core_hours": "Core Usage (Hours)"}

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
GENERALISED = "Other"
MIN_KEY_BYTES = 32
# A pseudonymised email, and a user in XDMoD's exports: short enough for its usernames.
PSEUDONYM_LENGTH = 32
MAKE_A_KEY = "python3 -c 'import secrets; print(secrets.token_hex(32))'"


def hmac_key(text: str | None) -> bytes:
    """EXPORT_HMAC_KEY as bytes: at least 32 random bytes, given as hex (64 characters) or base64.

    A short or guessable key lets anyone who guesses emails recompute the pseudonyms, so it is refused."""
    if not text:
        raise ConfigurationError(
            f"--pseudonymize needs EXPORT_HMAC_KEY, a secret of at least {MIN_KEY_BYTES} random bytes kept by the "
            f"admin and the same for every export; make one with {MAKE_A_KEY}"
        )
    key: bytes | None = None
    if re.fullmatch(r"[0-9a-fA-F]+", text) and len(text) % 2 == 0:
        key = bytes.fromhex(text)
    else:
        with contextlib.suppress(binascii.Error, ValueError):
            key = base64.b64decode(text, validate=True)
    if key is None or len(key) < MIN_KEY_BYTES or len(set(key)) < MIN_KEY_BYTES // 2:
        raise ConfigurationError(
            f"EXPORT_HMAC_KEY is too weak: it must hold at least {MIN_KEY_BYTES} random bytes (64 hex characters "
            f"or base64); make one with {MAKE_A_KEY}"
        )
    return key


def pseudonym(key: bytes, email: str) -> str:
    """Stable for a key and an email; without the key it cannot be linked back to the person."""
    return hmac.new(key, email.lower().encode("utf-8"), hashlib.sha256).hexdigest()


def generalise(values: Sequence[str | None], min_users: int) -> list[str | None]:
    """Each value held by fewer than `min_users` rows becomes GENERALISED; so does the next rarest while the
    GENERALISED group itself is smaller than that. No reported group is below the threshold (unless the
    whole export is). A missing value (no directory entry) is a value like any other here."""
    counts = Counter(values)
    merged = {value for value, count in counts.items() if count < min_users}
    while 0 < sum(counts[value] for value in merged) < min_users and len(merged) < len(counts):
        merged.add(min((value for value in counts if value not in merged), key=lambda v: (counts[v], str(v))))
    return [GENERALISED if value in merged else value for value in values]


def pseudonymize_usage(rows: Sequence[Sequence[Any]], key: bytes, min_users: int) -> list[tuple[Any, ...]]:
    """Emails and names become keyed pseudonyms, rare departments and job titles are generalised, and
    last_seen becomes a date: what is left does not single out a user to someone without the key."""
    records = [dict(zip(USAGE_COLUMNS, row, strict=True)) for row in rows]
    for column in ("department", "jobtitle"):
        for record, value in zip(records, generalise([r[column] for r in records], min_users), strict=True):
            record[column] = value
    for record in records:
        digest = pseudonym(key, record["email"])
        record["email"] = digest[:PSEUDONYM_LENGTH]
        record["fullname"] = f"user-{digest[:10]}"
        record["last_seen"] = str(record["last_seen"])[:10] if record["last_seen"] else None
    return sorted((tuple(record[column] for column in USAGE_COLUMNS) for record in records), key=lambda r: r[1])


def spreadsheet_safe(text: str) -> str:
    """A cell a spreadsheet shows as text: a leading formula character gets the usual `'`, unless the cell
    is a number (a negative number starts with `-`)."""
    if text.startswith(FORMULA_STARTS):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


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
    if isinstance(value, datetime):  # ISO 8601 with its UTC offset, as a spreadsheet reads it
        return value.astimezone(UTC).isoformat(timespec="seconds")
    return spreadsheet_safe(str(value))


@contextlib.contextmanager
def written_beside(path: Path, newline: str | None = None) -> Iterator[TextIO]:
    """A text file written beside `path`, then renamed over it: a failed export leaves no half file."""
    path = path.resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(handle, "w", encoding="utf-8", newline=newline) as stream:
            yield stream
        os.replace(temporary, path)
    except OSError as error:
        raise LoaderError(f"cannot write {path}: {error.strerror}") from None


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    count = 0
    with written_beside(path, newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        for row in rows:
            writer.writerow([_cell(value) for value in row])
            count += 1
    return count


def query_marts(settings: Settings, query: sql.Composed, params: dict[str, Any] | None = None) -> list[tuple]:
    """The rows of a query of the marts; one line saying to build where they are not built."""
    with connect(settings.database) as conn:
        try:
            return conn.execute(query, params).fetchall()
        except psycopg.errors.UndefinedTable:
            raise LoaderError(
                f"the marts are not built in schema {settings.analytics_schema}; run `jupyterhub-metrics build` first"
            ) from None


def export_usage(settings: Settings, out: Path, *, pseudonymize: bool, min_users: int = 5) -> int:
    key = hmac_key(settings.export_hmac_key) if pseudonymize else b""
    rows = query_marts(
        settings,
        sql.SQL("select {} from {}.user_usage_stats order by email").format(
            sql.SQL(", ").join(map(sql.Identifier, USAGE_COLUMNS)), sql.Identifier(settings.analytics_schema)
        ),
    )
    if pseudonymize:
        rows = pseudonymize_usage(rows, key, min_users)
    return write_csv(out, USAGE_COLUMNS, rows)


def _rollup_query(settings: Settings, relation: str, columns: Sequence[str], order: Sequence[str]) -> sql.Composed:
    """The columns of a rollup, hours rounded to 2 decimals as the CSV shows them."""
    selected = [
        sql.SQL("round({}::numeric, 2)").format(sql.Identifier(name))
        if name.endswith("_hours")
        else sql.Identifier(name)
        for name in columns
    ]
    return sql.SQL("select {} from {}.{} order by {}").format(
        sql.SQL(", ").join(selected),
        sql.Identifier(settings.analytics_schema),
        sql.Identifier(relation),
        sql.SQL(", ").join(map(sql.Identifier, order)),
    )


def export_departments(settings: Settings, out: Path, *, min_users: int) -> tuple[int, int]:
    rows = query_marts(
        settings, _rollup_query(settings, "department_usage", DEPARTMENT_COLUMNS, ["month", "department"])
    )
    users = DEPARTMENT_COLUMNS.index("users")
    kept = [row for row in rows if row[users] >= min_users]
    return write_csv(out, DEPARTMENT_COLUMNS, kept), len(rows) - len(kept)


def export_groups(settings: Settings, out: Path, *, min_users: int) -> tuple[int, int]:
    """group_term_usage as CSV; term-groups with fewer than `min_users` users left out, as for departments."""
    rows = query_marts(
        settings, _rollup_query(settings, "group_term_usage", GROUP_COLUMNS, ["starts_on", "group_name"])
    )
    users = GROUP_COLUMNS.index("users")
    kept = [row for row in rows if row[users] >= min_users]
    return write_csv(out, GROUP_COLUMNS, kept), len(rows) - len(kept)


def export_stale_homes(settings: Settings, out: Path) -> int:
    """stale_homes as CSV, the largest first."""
    return write_csv(
        out,
        STALE_HOME_COLUMNS,
        query_marts(
            settings,
            sql.SQL("select {} from {}.stale_homes order by used_bytes desc nulls last, volume_name").format(
                sql.SQL(", ").join(map(sql.Identifier, STALE_HOME_COLUMNS)), sql.Identifier(settings.analytics_schema)
            ),
        ),
    )


def export_allocations(settings: Settings, out: Path) -> int:
    """allocation_status as CSV, figures rounded to 2 decimals, each row with its ColdFront usage attribute."""
    figures = ("amount", "used", "remaining", "percent_used", "burn_rate_per_day")
    selected = [
        sql.SQL("round({}::numeric, 2)").format(sql.Identifier(name)) if name in figures else sql.Identifier(name)
        for name in ALLOCATION_COLUMNS[:-2]
    ]
    rows = query_marts(
        settings,
        sql.SQL("select {} from {}.allocation_status order by starts_on, allocation_name").format(
            sql.SQL(", ").join(selected), sql.Identifier(settings.analytics_schema)
        ),
    )
    resource, used = ALLOCATION_COLUMNS.index("resource"), ALLOCATION_COLUMNS.index("used")
    return write_csv(
        out,
        ALLOCATION_COLUMNS,
        (
            (
                *row,
                COLDFRONT_ATTRIBUTES.get(row[resource], ""),
                row[used] if row[resource] in COLDFRONT_ATTRIBUTES else "",
            )
            for row in rows
        ),
    )

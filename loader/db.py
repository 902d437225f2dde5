"""Database connections: one place that turns connection failures into one-line errors."""

from __future__ import annotations

from typing import Any

import psycopg

from loader.config import DatabaseSettings
from loader.errors import DatabaseUnavailable, LoaderError


def connect(database: DatabaseSettings, *, autocommit: bool = False) -> psycopg.Connection:
    try:
        return psycopg.connect(autocommit=autocommit, **database.connect_kwargs())  # type: ignore[arg-type]  # libpq keywords
    except psycopg.OperationalError as error:
        reason = first_line(str(error), database.password)
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL at {database.describe()}: {reason}; "
            "check DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD and that the server is running"
        ) from None


def scalar(cursor: psycopg.Cursor) -> Any:
    """The first column of the one row a query returns (an aggregate, a RETURNING)."""
    row = cursor.fetchone()
    if row is None:
        raise LoaderError("the database returned no row where one was expected; check the database")
    return row[0]


def first_line(message: str, secret: str) -> str:
    """A connection error's first line, with the password (if given) masked."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    text = lines[0] if lines else "connection failed"
    if secret:
        text = text.replace(secret, "***")
    return text

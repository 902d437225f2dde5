"""Builds a predecessor database (compat/predecessor_*.sql) in a schema, with rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from loader.config import PROJECT_ROOT

COMPAT = PROJECT_ROOT / "compat"
PREDECESSOR_TABLES_SQL = (COMPAT / "predecessor_tables.sql").read_text()
PREDECESSOR_VIEWS_SQL = (COMPAT / "predecessor_views.sql").read_text()
# Its hourly objects: continuous aggregates on TimescaleDB, the engine it deploys; plain views elsewhere.
PREDECESSOR_HOURLY_SQL = {
    "timescaledb": (COMPAT / "predecessor_timescaledb.sql").read_text(),
    "postgres": (COMPAT / "predecessor_hourly_views.sql").read_text(),
}


def create_predecessor(conn: psycopg.Connection, schema: str = "public", *, timescaledb: bool = False) -> None:
    """The predecessor's schema; with `timescaledb`, as it is on TimescaleDB (the extension is created if missing)."""
    with conn.transaction():
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
        if timescaledb:
            conn.execute("create extension if not exists timescaledb")
        conn.execute(sql.SQL("set local search_path to {}").format(sql.Identifier(schema)))
        hourly = PREDECESSOR_HOURLY_SQL["timescaledb" if timescaledb else "postgres"]
        conn.execute("\n".join([PREDECESSOR_TABLES_SQL, hourly, PREDECESSOR_VIEWS_SQL]).encode())


def predecessor_rows(count: int = 60) -> list[tuple]:
    start = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
    rows = []
    for index in range(count):
        user = f"user{index % 3}@example.edu"
        moment = (
            start + timedelta(minutes=5 * (index // 3)) + (timedelta(hours=3) if index >= count // 2 else timedelta())
        )
        node = "cpu-node-1" if index % 3 else "gpu-node-1"
        rows.append(
            (
                moment,
                user,
                user.split("@")[0],
                node,
                "quay.io/jupyter/scipy-notebook:2024-03-01",
                "scipy-notebook",
                "2024-03-01",
                300 * (index // 3),
                f"jupyter-user{index % 3}",
            )
        )
    return rows


def insert_predecessor_rows(conn: psycopg.Connection, rows: list[tuple], schema: str = "public") -> None:
    with conn.transaction():
        with conn.cursor().copy(
            sql.SQL(
                'copy {}.container_observations ("timestamp", user_email, user_name, node_name, container_image,'
                " container_base, container_version, age_seconds, pod_name) from stdin"
            ).format(sql.Identifier(schema))
        ) as copy:
            for row in rows:
                copy.write_row(row)
        conn.execute(
            sql.SQL(
                "insert into {}.users (email, user_id, full_name, department, job_title, first_seen, last_seen)"
                " select 'user0@example.edu', 'user0', 'User Zero', 'Fellowships', 'GRAD TEACHING ASST, Physics',"
                ' min("timestamp"), max("timestamp") from {}.container_observations'
                " where user_email = 'user0@example.edu'"
            ).format(sql.Identifier(schema), sql.Identifier(schema))
        )
        conn.execute(sql.SQL("refresh materialized view {}.user_sessions").format(sql.Identifier(schema)))

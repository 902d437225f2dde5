"""Runs dbt in-process against a test database and loads observation streams through the real write path."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from loader.config import Settings
from loader.dbt_runner import run_dbt
from loader.hub_source import HubSnapshot
from loader.pods import Observation
from loader.raw_store import OBSERVATION_COLUMNS, RunKind, RunRecord, record_collection


def dbt(settings: Settings, *args: str) -> None:
    assert run_dbt(settings, list(args)), f"dbt {' '.join(args)} failed (see the log above)"


def observation(
    user_email: str,
    pod_name: str,
    node_name: str,
    at: datetime,
    *,
    container_base: str = "scipy-notebook",
    container_version: str = "1",
    **fields: Any,
) -> Observation:
    """An observation row with plausible values; any other Observation field may be given (pod_uid, user_name,
    cluster, namespace, gpu_count, cpu_usage_cores, ...)."""
    row = Observation(
        timestamp=at,
        user_email=user_email,
        user_name=user_email.split("@")[0],
        node_name=node_name,
        container_image=f"quay.io/jupyter/{container_base}:{container_version}",
        container_base=container_base,
        container_version=container_version,
        age_seconds=0,
        pod_name=pod_name,
        cluster="test",
        namespace="jhub",
        pod_uid=None,
        server_name="",
        gpu_count=0,
        cpu_request=Decimal("0.5"),
        memory_request_bytes=2**30,
        pod_started_at=None,
    )
    return replace(row, **fields)


def load_batch(
    conn: psycopg.Connection,
    settings: Settings,
    observations: Iterable[Observation],
    hub: HubSnapshot | None = None,
    observed_at: datetime | None = None,
) -> int:
    """One collection of `observations` through the loader's write path. Its time is the earliest row's unless given:
    the incremental models read a run's rows from its observed_at on (a real collection's rows all have it)."""
    rows = list(observations)
    moment = observed_at or min((row.timestamp for row in rows), default=datetime.now(UTC))
    run = RunRecord(
        kind=RunKind.COLLECT, started_at=datetime.now(UTC), cluster="test", observed_at=moment, pods_listed=len(rows)
    )
    return record_collection(conn, settings.raw_schema, run, rows, hub=hub)


def copy_without_run_id(conn: psycopg.Connection, settings: Settings, observations: Iterable[Observation]) -> None:
    """What a writer other than the loader does (the predecessor's collector, a psql \\copy backfill):
    a plain COPY into the raw table, no collector_run_id, in a transaction of its own."""
    columns = sql.SQL(", ").join(map(sql.Identifier, OBSERVATION_COLUMNS))
    with (
        conn.transaction(),
        conn.cursor().copy(
            sql.SQL("copy {}.container_observations ({}) from stdin").format(
                sql.Identifier(settings.raw_schema), columns
            )
        ) as copy,
    ):
        for row in observations:
            copy.write_row([getattr(row, name) for name in OBSERVATION_COLUMNS])


def compress_chunks(
    conn: psycopg.Connection, older_than: timedelta | None = None, table: str = "raw.container_observations"
) -> list[str]:
    """Compresses the hypertable's chunks (those older than `older_than`, or all), as the policy does; a no-op on
    plain PostgreSQL. The compression policy, which a fresh server runs at once, may get to a chunk first."""
    if conn.execute("select to_regclass('timescaledb_information.chunks') is null").fetchone()[0]:
        return []
    if older_than is None:
        chunks = conn.execute("select c::text from show_chunks(%s::regclass) as c", (table,)).fetchall()
    else:
        chunks = conn.execute(
            "select c::text from show_chunks(%s::regclass, older_than => %s::interval) as c", (table, older_than)
        ).fetchall()
    compressed = []
    for (chunk,) in chunks:
        with contextlib.suppress(psycopg.errors.DuplicateObject):
            conn.execute("select compress_chunk(%s::regclass, if_not_compressed => true)", (chunk,))
        compressed.append(chunk)
    return compressed


# Relations of dbt's own bookkeeping, whose rows say when and how a build ran rather than what was used.
BOOKKEEPING = {"complete_build", "published_build"}
# Columns that say when the loading ran (now() at each step), which two builds never share.
WHEN_IT_RAN = {
    "stg_raw__collector_runs": ("started_at", "finished_at"),
    "stg_raw__users": ("fetched_at",),
    "users": ("fetched_at",),
    "users_history": ("fetched_at", "dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to"),
}


def relation_names(conn: psycopg.Connection, schema: str) -> list[str]:
    return [
        name
        for (name,) in conn.execute(
            "select table_name from information_schema.tables where table_schema = %s order by 1", (schema,)
        ).fetchall()
        if name not in BOOKKEEPING
    ]


def relation_rows(conn: psycopg.Connection, schema: str, name: str) -> list[str]:
    """The rows of one relation as text, in order; sums of double precision to 9 decimals, since their last bits
    follow the order in which an engine happens to add (24.666666666666668 on one, ...664 on another)."""
    columns = conn.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = %s and table_name = %s order by ordinal_position",
        (schema, name),
    ).fetchall()
    selected = [
        sql.SQL("round({}::numeric, 9)" if data_type == "double precision" else "{}").format(sql.Identifier(column))
        for column, data_type in columns
        if column not in WHEN_IT_RAN.get(name, ())
    ]
    query = sql.SQL("select row({})::text from {} as r order by 1").format(
        sql.SQL(", ").join(selected), sql.Identifier(schema, name)
    )
    return [row for (row,) in conn.execute(query).fetchall()]


def every_relations_rows(database, schema: str) -> dict[str, list[str]]:
    with psycopg.connect(**database.connect_kwargs()) as conn:
        return {name: relation_rows(conn, schema, name) for name in relation_names(conn, schema)}

"""Writes to the raw schema. Every run is one transaction: its rows and its run record, or nothing."""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass, field, fields
from datetime import datetime
from typing import Iterable, Mapping

import psycopg
from psycopg import sql

from loader.graph_source import DirectoryEntry
from loader.pods import Observation

OBSERVATION_COLUMNS = [f.name for f in fields(Observation)]
# Held from the moment a run takes its id until it commits, so run ids become visible in
# increasing order: "runs after the last one processed" is then a safe incremental filter.
RUN_ORDER_LOCK_KEY = 7_361_002


@dataclass
class RunRecord:
    kind: str
    started_at: datetime
    cluster: str | None = None
    observed_at: datetime | None = None
    pods_listed: int = 0
    rows_recorded: int = 0
    rows_already_recorded: int = 0
    skip_reasons: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def pods_skipped(self) -> int:
        return sum(self.skip_reasons.values())


def _insert_run(conn: psycopg.Connection, schema: str, run: RunRecord, status: str, run_id: int | None = None) -> int:
    values = {
        "kind": run.kind,
        "cluster": run.cluster,
        "started_at": run.started_at,
        "observed_at": run.observed_at,
        "status": status,
        "pods_listed": run.pods_listed,
        "rows_recorded": run.rows_recorded,
        "rows_already_recorded": run.rows_already_recorded,
        "pods_skipped": run.pods_skipped,
        "skip_reasons": json.dumps(dict(run.skip_reasons), sort_keys=True),
        "error": run.error,
    }
    if run_id is not None:
        values = {"id": run_id, **values}
    query = sql.SQL(
        "insert into {}.collector_runs ({}, finished_at) {} values ({}, clock_timestamp()) returning id"
    ).format(
        sql.Identifier(schema),
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL("overriding system value" if run_id is not None else ""),
        sql.SQL(", ").join(sql.Placeholder() * len(values)),
    )
    return conn.execute(query, list(values.values())).fetchone()[0]


def record_collection(
    conn: psycopg.Connection, schema: str, run: RunRecord, observations: Iterable[Observation]
) -> int:
    """Writes the observations (COPY, then insert skipping rows already present) and the run record."""
    schema_id = sql.Identifier(schema)
    rows = [astuple(observation) for observation in observations]
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (RUN_ORDER_LOCK_KEY,))
        run_id = conn.execute(
            sql.SQL("select nextval(pg_get_serial_sequence({}, 'id'))").format(
                sql.Literal(f"{schema}.collector_runs")
            )
        ).fetchone()[0]
        conn.execute(
            sql.SQL(
                "create temp table if not exists incoming_observations"
                " (like {}.container_observations including defaults) on commit delete rows"
            ).format(schema_id)
        )
        columns = sql.SQL(", ").join(map(sql.Identifier, OBSERVATION_COLUMNS))
        with conn.cursor().copy(sql.SQL("copy incoming_observations ({}) from stdin").format(columns)) as copy:
            for row in rows:
                copy.write_row(row)
        inserted = conn.execute(
            sql.SQL(
                "insert into {}.container_observations ({}, collector_run_id)"
                " select {}, %s from incoming_observations"
                " on conflict do nothing"
            ).format(schema_id, columns, columns),
            (run_id,),
        ).rowcount
        run.rows_recorded = inserted
        run.rows_already_recorded = len(rows) - inserted
        _insert_run(conn, schema, run, "succeeded", run_id)
    return run_id


def record_failed_run(conn: psycopg.Connection, schema: str, run: RunRecord) -> int:
    with conn.transaction():
        return _insert_run(conn, schema, run, "failed")


def record_succeeded_run(conn: psycopg.Connection, schema: str, run: RunRecord) -> int:
    """For runs whose writes were committed batch by batch (users sync)."""
    with conn.transaction():
        return _insert_run(conn, schema, run, "succeeded")


def write_directory_entries(conn: psycopg.Connection, schema: str, entries: Iterable[DirectoryEntry]) -> int:
    """Upserts what the directory said, in one transaction. A user no longer found keeps the last values
    the directory gave (the department history needs them); only its status and fetch time change."""
    rows = [
        (entry.email.lower(), entry.status, entry.graph_id, entry.full_name, entry.department, entry.job_title)
        for entry in entries
    ]
    if not rows:
        return 0
    with conn.transaction():
        with conn.cursor() as cursor:
            cursor.executemany(
                sql.SQL(
                    "insert into {}.users as existing"
                    " (email, directory_status, graph_id, full_name, department, job_title, fetched_at)"
                    " values (%s, %s, %s, %s, %s, %s, clock_timestamp())"
                    " on conflict (email) do update set"
                    "  directory_status = excluded.directory_status,"
                    "  fetched_at = excluded.fetched_at,"
                    "  graph_id = case when excluded.directory_status = 'found' then excluded.graph_id else existing.graph_id end,"
                    "  full_name = case when excluded.directory_status = 'found' then excluded.full_name else existing.full_name end,"
                    "  department = case when excluded.directory_status = 'found' then excluded.department else existing.department end,"
                    "  job_title = case when excluded.directory_status = 'found' then excluded.job_title else existing.job_title end"
                ).format(sql.Identifier(schema)),
                rows,
            )
    return len(rows)


def emails_to_look_up(conn: psycopg.Connection, schema: str, *, refresh: bool) -> list[str]:
    """Users seen in observations and not yet in users (or whose last look-up failed); with refresh, everyone.

    The distinct emails come from a skip scan of the primary key: cost grows with users, not observations.
    """
    schema_id = sql.Identifier(schema)
    observed = sql.SQL(
        "with recursive observed(email) as ("
        " (select user_email from {0}.container_observations order by user_email limit 1)"
        " union all"
        " select (select user_email from {0}.container_observations where user_email > observed.email"
        "         order by user_email limit 1)"
        " from observed where observed.email is not null"
        ")"
    ).format(schema_id)
    if refresh:
        query = observed + sql.SQL(
            " select email from observed where email is not null"
            " union select email from {}.users order by 1"
        ).format(schema_id)
    else:
        query = observed + sql.SQL(
            " select observed.email from observed"
            " left join {}.users on users.email = observed.email"
            " where observed.email is not null and (users.email is null or users.directory_status = 'error')"
            " order by 1"
        ).format(schema_id)
    return [row[0] for row in conn.execute(query).fetchall()]

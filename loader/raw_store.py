"""Writes to the raw schema. Every run is one transaction: its rows and its run record, or nothing."""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass, field, fields
from datetime import datetime
from typing import Iterable, Mapping

import psycopg
from psycopg import sql

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
    """For runs whose own writes were committed separately (users sync batches)."""
    with conn.transaction():
        return _insert_run(conn, schema, run, "succeeded")

"""Writes to the raw schema. Every run is one transaction: its rows and its run record, or nothing."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum

import psycopg
from psycopg import sql

from loader.db import scalar
from loader.graph_source import DirectoryEntry
from loader.hub_source import HubSnapshot
from loader.pods import Observation, PendingPod
from loader.storage import STORAGE_COLUMNS, NameShown, StorageRow

log = logging.getLogger(__name__)

OBSERVATION_COLUMNS = [f.name for f in fields(Observation) if f.name != "hub_username"]


class RunKind(StrEnum):
    """The kinds of collector_runs rows (spec 3.1), declared once. dbt's `run_kinds` var (the staging test's
    accepted values) and the default of collector_run_id (bootstrap_sql/0010, kind external) are tested against it."""

    COLLECT = "collect"
    USERS_SYNC = "users_sync"
    EXTERNAL = "external"  # opened by collector_run_id's default, for rows another writer inserted without a run id


# Held from the moment a run takes its id until it commits, so run ids become visible in
# increasing order: "runs after the last one processed" is then a safe incremental filter.
RUN_ORDER_LOCK_KEY = 7_361_002


@dataclass
class RunRecord:
    kind: RunKind
    started_at: datetime
    cluster: str | None = None
    observed_at: datetime | None = None
    pods_listed: int = 0
    rows_recorded: int = 0
    rows_already_recorded: int = 0
    skip_reasons: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None
    pending_pods_recorded: int = 0
    # The hub's view (spec 3.7): None where the hub was not read.
    hub_servers_listed: int | None = None
    hub_groups_listed: int | None = None
    hub_memberships_recorded: bool | None = None
    # Storage (spec 3.8): None where it was not read.
    storage_volumes_listed: int | None = None
    storage_rows_written: int | None = None

    @property
    def pods_skipped(self) -> int:
        return sum(count for reason, count in self.skip_reasons.items() if not reason.startswith("storage_"))


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
        "pending_pods_recorded": run.pending_pods_recorded,
        "hub_servers_listed": run.hub_servers_listed,
        "hub_groups_listed": run.hub_groups_listed,
        "hub_memberships_recorded": run.hub_memberships_recorded,
        "storage_volumes_listed": run.storage_volumes_listed,
        "storage_rows_written": run.storage_rows_written,
    }
    # A column the run has nothing for is left to its default (null for every nullable one), so a run that reads no
    # storage still records itself in a database one migrate behind (an upgrade's test loads before migrating).
    values = {key: value for key, value in values.items() if value is not None}
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
    return int(scalar(conn.execute(query, list(values.values()))))


def record_collection(
    conn: psycopg.Connection,
    schema: str,
    run: RunRecord,
    observations: Iterable[Observation],
    pending: Iterable[PendingPod] = (),
    hub: HubSnapshot | None = None,
    storage: StorageWrite | None = None,
) -> int:
    """Writes the observations, the users they show, the pods not running, the hub's view, storage and the run
    record, in one transaction.

    An observation goes to container_observations unless a pod of another cluster or namespace
    already holds its (user_email, pod_name, timestamp) there; then to container_observations_overflow.
    A row already present with the same cluster and namespace is counted as already recorded.
    """
    schema_id = sql.Identifier(schema)
    observations = list(observations)
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (RUN_ORDER_LOCK_KEY,))
        run_id = scalar(
            conn.execute(
                sql.SQL("select nextval(pg_get_serial_sequence({}, 'id'))").format(
                    sql.Literal(f"{schema}.collector_runs")
                )
            )
        )
        conn.execute(
            sql.SQL(
                "create temp table if not exists incoming_observations"
                " (like {}.container_observations_overflow) on commit delete rows"
            ).format(schema_id)
        )
        columns = sql.SQL(", ").join(map(sql.Identifier, OBSERVATION_COLUMNS))
        with conn.cursor().copy(sql.SQL("copy incoming_observations ({}) from stdin").format(columns)) as copy:
            for observation in observations:
                copy.write_row([getattr(observation, name) for name in OBSERVATION_COLUMNS])
        inserted = 0
        if observations:
            times = [observation.timestamp for observation in observations]
            inserted += counted(conn, insert_statement(schema, "container_observations", run_id))
            # Where the main table took every row (every collection but a replay or a clash of two hubs' pods),
            # each is held there under its own cluster and namespace and none can belong in the overflow table.
            if inserted < len(observations):
                conn.execute(CLAIMED_TABLE)
                conn.execute(claim_statement(schema, min(times), max(times)))
                inserted += counted(conn, insert_statement(schema, "container_observations_overflow", run_id))
        _keep_users_current(conn, schema_id, observations)
        run.pending_pods_recorded = _record_pending(conn, schema_id, run_id, pending)
        if hub is not None:
            _record_hub(conn, schema_id, run, run_id, hub)
        if storage is not None:
            _record_names_shown(conn, schema_id, run_id, storage.names, run.observed_at or run.started_at)
            if storage.rows is not None:
                _record_storage(conn, schema_id, run, run_id, storage.rows)
        run.rows_recorded = inserted
        run.rows_already_recorded = len(observations) - inserted
        _insert_run(conn, schema, run, "succeeded", run_id)
    return run_id


CLAIMED_TABLE = (
    "create temp table if not exists claimed_observations"
    ' (user_email text, pod_name text, "timestamp" timestamptz, cluster text, namespace text) on commit delete rows'
)


def counted(conn: psycopg.Connection, statement: sql.Composed) -> int:
    """The rows an INSERT ... RETURNING wrote: the count a distributed engine (Citus) reports for an insert from a
    select is not the rows written, the returned rows are."""
    return len(conn.execute(statement).fetchall())


def claim_statement(schema: str, earliest: datetime, latest: datetime) -> sql.Composed:
    """Which incoming observations the main table holds (same user, pod and time) after its insert: the overflow
    table takes one only where that row is of another cluster or namespace.

    The check names the collection's own time as constants (one value for a collection; a range for a replayed
    batch), so TimescaleDB excludes every chunk but the current one at planning time and the collection's cost does
    not grow with history (an unbounded anti join is planned over every chunk, decompressing compressed ones). Its
    rows go to a temporary table that the overflow insert then reads alone: Citus joins no distributed table with a
    local one directly, and the same statements run on every engine."""
    return sql.SQL(
        'insert into claimed_observations (user_email, pod_name, "timestamp", cluster, namespace)'
        ' select main.user_email, main.pod_name, main."timestamp", main.cluster, main.namespace'
        " from {}.container_observations as main"
        ' where main."timestamp" between {} and {}'
        ' and (main.user_email, main.pod_name, main."timestamp") in'
        ' (select incoming.user_email, incoming.pod_name, incoming."timestamp" from incoming_observations as incoming)'
    ).format(sql.Identifier(schema), sql.Literal(earliest), sql.Literal(latest))


def insert_statement(schema: str, table: str, run_id: int) -> sql.Composed:
    """The insert of the incoming observations into one observation table; the overflow table's reads what
    claim_statement found."""
    schema_id = sql.Identifier(schema)
    columns = sql.SQL(", ").join(map(sql.Identifier, OBSERVATION_COLUMNS))
    unclaimed = (
        sql.SQL(
            "not exists (select from claimed_observations as main"
            " where main.user_email = incoming.user_email and main.pod_name = incoming.pod_name"
            ' and main."timestamp" = incoming."timestamp"'
            " and main.cluster is not distinct from incoming.cluster"
            " and main.namespace is not distinct from incoming.namespace)"
        )
        if table == "container_observations_overflow"
        else sql.SQL("true")
    )
    return sql.SQL(
        "insert into {}.{} ({}, collector_run_id)"
        " select {}, {} from incoming_observations as incoming where {}"
        # Deterministic: a replay of the same pods puts each in the same table again.
        " order by incoming.cluster nulls first, incoming.namespace nulls first"
        " on conflict do nothing returning 1"
    ).format(schema_id, sql.Identifier(table), columns, columns, sql.Literal(run_id), unclaimed)


def last_storage_reading(conn: psycopg.Connection, schema: str, cluster: str | None) -> datetime | None:
    """When the latest run of this cluster that read storage observed (by the partial index on such runs)."""
    row = conn.execute(
        sql.SQL(
            "select max(observed_at) from {}.collector_runs"
            " where coalesce(cluster, '') = coalesce(%s, '') and storage_volumes_listed is not null"
        ).format(sql.Identifier(schema)),
        (cluster,),
    ).fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class StorageWrite:
    """A collection's storage: the names its pods and PVCs showed, and its storage rows (None: figures not read)."""

    names: frozenset[NameShown]
    rows: list[StorageRow] | None


def _record_names_shown(
    conn: psycopg.Connection, schema_id: sql.Identifier, run_id: int, names: Iterable[NameShown], at: datetime
) -> None:
    """One statement whatever the count: a collection shows every user's names again, and all but new ones are
    known (a statement per name cost more than the rest of storage's writes at thousands of users)."""
    shown = sorted(names, key=str)
    if shown:
        conn.execute(
            sql.SQL(
                "insert into {}.hub_names_seen (user_email, hub_username, escaped_name, first_seen_at,"
                " collector_run_id) select shown.user_email, shown.hub_username, shown.escaped_name, %s, %s"
                " from unnest(%s::text[], %s::text[], %s::text[]) as shown (user_email, hub_username, escaped_name)"
                " on conflict do nothing"
            ).format(schema_id),
            (
                at,
                run_id,
                [name.user_email for name in shown],
                [name.hub_username for name in shown],
                [name.escaped_name for name in shown],
            ),
        )


# Figures taken from the latest collection of the day where it read them; the rest kept or combined.
_LATEST = ("used_bytes", "capacity_bytes", "quota_bytes", "file_count")
_STORAGE_UPDATES = {
    "owner_name": "coalesce(excluded.owner_name, stored.owner_name)",
    "user_email": "coalesce(excluded.user_email, stored.user_email)",
    "server_name": "coalesce(excluded.server_name, stored.server_name)",
    **{
        column: f"case when excluded.observed_at >= stored.observed_at then coalesce(excluded.{column},"
        f" stored.{column}) else coalesce(stored.{column}, excluded.{column}) end"
        for column in _LATEST
    },
    "largest_used_bytes": "greatest(stored.largest_used_bytes, excluded.largest_used_bytes)",
    "last_modified_at": "greatest(stored.last_modified_at, excluded.last_modified_at)",
    "first_observed_at": "least(stored.first_observed_at, excluded.first_observed_at)",
}


def _record_storage(
    conn: psycopg.Connection, schema_id: sql.Identifier, run: RunRecord, run_id: int, rows: list[StorageRow]
) -> None:
    """One row per volume and UTC day: inserted by the day's first collection, updated by later ones only where a
    figure changed. A directory's owner (and a PVC's, where its annotation gives no email by the identity rules) is
    the one user whose pods showed that name; none or several: null, counted and listed."""
    at = run.observed_at or run.started_at
    run.storage_volumes_listed = len(rows)
    conn.execute(
        sql.SQL(
            "create temp table if not exists incoming_storage on commit delete rows as"
            " select {} from {}.storage_observations with no data"
        ).format(sql.SQL(", ").join(map(sql.Identifier, STORAGE_COLUMNS)), schema_id)
    )
    with conn.cursor().copy(
        sql.SQL("copy incoming_storage ({}) from stdin").format(
            sql.SQL(", ").join(map(sql.Identifier, STORAGE_COLUMNS))
        )
    ) as copy:
        for row in rows:
            copy.write_row([getattr(row, name) for name in STORAGE_COLUMNS])
    owner = sql.SQL(
        "coalesce(incoming.user_email, (select case when count(distinct seen.user_email) = 1 then"
        " min(seen.user_email) end from {}.hub_names_seen as seen where seen.escaped_name ="
        " incoming.owner_name or seen.hub_username = incoming.owner_name))"
    ).format(schema_id)
    changed = ", ".join(f"stored.{column}" for column in _STORAGE_UPDATES)
    updated = ", ".join(_STORAGE_UPDATES.values())
    written = conn.execute(
        sql.SQL(
            "insert into {schema}.storage_observations as stored ({columns}, largest_used_bytes, day,"
            " first_observed_at, observed_at, collector_run_id)"
            " select {incoming_columns}, incoming.used_bytes, (%(at)s at time zone 'UTC')::date, %(at)s, %(at)s,"
            " %(run)s from incoming_storage as incoming"
            " on conflict (day, layout, coalesce(cluster, ''), coalesce(namespace, ''), volume_name) do update set"
            " {updates}, observed_at = greatest(stored.observed_at, excluded.observed_at),"
            " collector_run_id = excluded.collector_run_id"
            " where ({changed}) is distinct from ({updated})"
            " returning stored.user_email is null, stored.layout, stored.volume_name"
        ).format(
            schema=schema_id,
            columns=sql.SQL(", ").join(map(sql.Identifier, STORAGE_COLUMNS)),
            incoming_columns=sql.SQL(", ").join(
                owner if name == "user_email" else sql.SQL("incoming.{}").format(sql.Identifier(name))
                for name in STORAGE_COLUMNS
            ),
            updates=sql.SQL(", ").join(sql.SQL(f"{column} = {value}") for column, value in _STORAGE_UPDATES.items()),
            changed=sql.SQL(changed),
            updated=sql.SQL(updated),
        ),
        {"at": at, "run": run_id},
    ).fetchall()
    run.storage_rows_written = len(written)
    unmatched = sorted(f"{layout} {name}" for nobody, layout, name in written if nobody)
    if unmatched:
        log.warning(
            "%d storage volumes match no user the hub or its pods have shown (kept, owner unknown): %s",
            len(unmatched),
            ", ".join(unmatched[:5]) + (" ..." if len(unmatched) > 5 else ""),
        )


PENDING_COLUMNS = [f.name for f in fields(PendingPod)]


def _record_pending(
    conn: psycopg.Connection, schema_id: sql.Identifier, run_id: int, pending: Iterable[PendingPod]
) -> int:
    rows = [[getattr(pod, name) for name in PENDING_COLUMNS] + [run_id] for pod in pending]
    if not rows:
        return 0
    with conn.cursor() as cursor:
        cursor.executemany(
            sql.SQL("insert into {}.pending_pods ({}, collector_run_id) values ({}) on conflict do nothing").format(
                schema_id,
                sql.SQL(", ").join(map(sql.Identifier, PENDING_COLUMNS)),
                sql.SQL(", ").join(sql.Placeholder() * (len(PENDING_COLUMNS) + 1)),
            ),
            rows,
        )
    return len(rows)


def _record_hub(
    conn: psycopg.Connection, schema_id: sql.Identifier, run: RunRecord, run_id: int, hub: HubSnapshot
) -> None:
    """The hub's servers, and its group memberships where they differ from the last ones recorded (the whole set,
    with the run marked as recording it: an empty set is a record too)."""
    with conn.cursor() as cursor:
        cursor.executemany(
            sql.SQL(
                "insert into {}.hub_servers (collector_run_id, user_name, server_name, last_activity, started, pending,"
                " ready) values (%s, %s, %s, %s, %s, %s, %s) on conflict do nothing"
            ).format(schema_id),
            [(run_id, s.user_name, s.server_name, s.last_activity, s.started, s.pending, s.ready) for s in hub.servers],
        )
    run.hub_servers_listed = len(hub.servers)
    run.hub_groups_listed = hub.groups_listed
    if hub.memberships is None:
        return
    last = conn.execute(
        # Each hub (cluster) has its own groups: compare with the last set this cluster recorded.
        sql.SQL(
            "select max(id) from {0}.collector_runs where hub_memberships_recorded and cluster is not distinct from %s"
        ).format(schema_id),
        (run.cluster,),
    ).fetchone()
    last_run = last[0] if last else None
    recorded = (
        set(
            conn.execute(
                sql.SQL("select group_name, user_name from {}.hub_group_members where collector_run_id = %s").format(
                    schema_id
                ),
                (last_run,),
            ).fetchall()
        )
        if last_run is not None
        else None
    )
    run.hub_memberships_recorded = recorded != hub.memberships
    if run.hub_memberships_recorded:
        with conn.cursor() as cursor:
            cursor.executemany(
                sql.SQL(
                    "insert into {}.hub_group_members (collector_run_id, group_name, user_name) values (%s, %s, %s)"
                ).format(schema_id),
                [(run_id, group, user) for group, user in sorted(hub.memberships)],
            )


def _keep_users_current(conn: psycopg.Connection, schema_id: sql.Identifier, observations: list[Observation]) -> None:
    """users.first_seen/last_seen/user_id, as the predecessor's collector kept them (its dashboards read them).

    A known user's first_seen only ever moves earlier (a backfill); a new user's is its first observation.
    """
    seen: dict[str, tuple[str, datetime, datetime]] = {}
    for observation in observations:
        username, first, last = seen.get(
            observation.user_email, (observation.hub_username, observation.timestamp, observation.timestamp)
        )
        seen[observation.user_email] = (
            observation.hub_username or username,
            min(first, observation.timestamp),
            max(last, observation.timestamp),
        )
    if not seen:
        return
    with conn.cursor() as cursor:
        cursor.executemany(
            sql.SQL(
                "insert into {}.users as existing (email, user_id, first_seen, last_seen) values (%s, %s, %s, %s)"
                " on conflict (email) do update set"
                " user_id = coalesce(nullif(excluded.user_id, ''), existing.user_id),"
                " first_seen = least(existing.first_seen, excluded.first_seen),"
                " last_seen = greatest(existing.last_seen, excluded.last_seen)"
            ).format(schema_id),
            [
                (email, username or email.split("@")[0], first, last)
                for email, (username, first, last) in sorted(seen.items())
            ],
        )


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
    schema_id = sql.Identifier(schema)
    # What the directory last said survives a not_found or error answer.
    kept_unless_found = ",".join(
        f" {column} = case when excluded.directory_status = 'found' then excluded.{column} else existing.{column} end"
        for column in ("graph_id", "full_name", "department", "job_title")
    )
    with conn.transaction(), conn.cursor() as cursor:
        # A user new to this table gets what collection would have given it: a user_id (NOT NULL in
        # the predecessor's schema) and first/last seen from its observations, never the sync's time.
        cursor.executemany(
            sql.SQL(
                "insert into {0}.users as existing"
                " (email, directory_status, graph_id, full_name, department, job_title, fetched_at,"
                "  user_id, first_seen, last_seen)"
                " select new.*, split_part(new.email, '@', 1), seen.first_seen, seen.last_seen"
                " from (values (%s, %s, %s, %s, %s, %s, clock_timestamp())) as new"
                "  (email, directory_status, graph_id, full_name, department, job_title, fetched_at)"
                # The same email again rather than a lateral reference to new.email: Citus runs this aggregate on
                # the one worker holding the user, and pushes down no lateral aggregate over a local row.
                ' cross join (select min(o."timestamp") as first_seen, max(o."timestamp") as last_seen'
                "  from {0}.container_observations as o where o.user_email = %s) as seen"
                " on conflict (email) do update set"
                "  directory_status = excluded.directory_status,"
                "  fetched_at = excluded.fetched_at," + kept_unless_found
            ).format(schema_id),
            [(*row, row[0]) for row in rows],
        )
    return len(rows)


def is_distributed(conn: psycopg.Connection, schema: str, table: str) -> bool:
    """Whether Citus distributes the table (bootstrap_sql/repeatable/distributed_tables.sql)."""
    if not scalar(conn.execute("select to_regclass('pg_catalog.pg_dist_partition') is not null")):
        return False
    return bool(
        scalar(
            conn.execute(
                "select exists (select 1 from pg_dist_partition where logicalrelid = to_regclass(%s))",
                (f"{schema}.{table}",),
            )
        )
    )


def emails_to_look_up(conn: psycopg.Connection, schema: str, *, refresh: bool) -> list[str]:
    """Users seen in observations and not looked up yet (collection adds them to users without directory
    data), or whose last look-up failed; with refresh, everyone.

    The distinct emails come from a skip scan of the primary key: cost grows with users, not observations.
    """
    schema_id = sql.Identifier(schema)
    # Citus runs no recursive CTE across shards: there each worker groups its own users' rows, in parallel.
    distributed = is_distributed(conn, schema, "container_observations")
    observed = (
        sql.SQL(
            "with observed(email) as (select user_email from {0}.container_observations group by user_email)"
        ).format(schema_id)
        if distributed
        else sql.SQL(
            "with recursive observed(email) as ("
            " (select user_email from {0}.container_observations order by user_email limit 1)"
            " union all"
            " select (select user_email from {0}.container_observations where user_email > observed.email"
            "         order by user_email limit 1)"
            " from observed where observed.email is not null"
            ")"
        ).format(schema_id)
    )
    if refresh:
        query = observed + sql.SQL(
            " select email from observed where email is not null union select email from {}.users order by 1"
        ).format(schema_id)
    else:
        query = observed + sql.SQL(
            " select observed.email from observed"
            " left join {}.users on users.email = observed.email"
            " where observed.email is not null"
            " and (users.email is null or users.directory_status is null or users.directory_status = 'error')"
            " order by 1"
        ).format(schema_id)
    return [row[0] for row in conn.execute(query).fetchall()]

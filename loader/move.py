"""Moving a database's history into another one (a Citus coordinator, a new server): every raw table's rows, copied
in one snapshot of the source and one transaction of the target, each table's row count and checksum compared
before the target commits. The source is only read."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from loader.errors import LoaderError

# The loader's own bookkeeping of applied bootstrap SQL: the target's migrate wrote its own.
NOT_MOVED = frozenset({"jupyterhub_metrics_migrations"})


@dataclass(frozen=True)
class TableMoved:
    table: str
    rows: int
    checksum: str


def base_tables(conn: psycopg.Connection, schema: str) -> dict[str, list[str]]:
    """The schema's tables (hypertables read through their parent) and their stored columns, in order."""
    found: dict[str, list[str]] = {}
    for table, column in conn.execute(
        "select c.relname, a.attname from pg_class as c"
        " join pg_namespace as n on n.oid = c.relnamespace"
        " join pg_attribute as a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped"
        " and a.attgenerated = ''"
        " where n.nspname = %s and c.relkind in ('r', 'p') and not c.relispartition"
        " order by c.relname, a.attnum",
        (schema,),
    ).fetchall():
        found.setdefault(table, []).append(column)
    return {table: columns for table, columns in found.items() if table not in NOT_MOVED}


def table_checksum(conn: psycopg.Connection, schema: str, table: str, columns: list[str]) -> tuple[int, str]:
    """Rows and an order-free checksum of every column's text (sum of each row's md5 prefix), the same on every
    engine for the same rows (the session's time zone is UTC on both sides)."""
    row = sql.SQL("row({})::text").format(sql.SQL(", ").join(map(sql.Identifier, columns)))
    count, checksum = conn.execute(
        sql.SQL(
            "select count(*), coalesce(sum(('x' || left(md5({}), 15))::bit(60)::bigint::numeric), 0)::text from {}.{}"
        ).format(row, sql.Identifier(schema), sql.Identifier(table))
    ).fetchone() or (0, "0")
    return int(count), str(checksum)


def latest_run(conn: psycopg.Connection, schema: str) -> int:
    """Every writer opens a collector run (collections, users sync, other writers by the column default)."""
    row = conn.execute(
        sql.SQL("select coalesce(max(id), 0) from {}.collector_runs").format(sql.Identifier(schema))
    ).fetchone()
    return int(row[0]) if row else 0


def move_history(
    source: psycopg.Connection,
    target: psycopg.Connection,
    schema: str,
    *,
    leave: frozenset[str] = frozenset(),
    fresh_source: psycopg.Connection | None = None,
) -> list[TableMoved]:
    """Copies every table of `schema` from source to target and returns what was moved. The target must be
    migrated to the same tables and hold no row; a table only the source has fails the move unless named in
    `leave`. `fresh_source`, a second connection to the source, tells whether anything wrote there meanwhile."""
    for conn in (source, target):
        conn.autocommit = True  # the transactions below are begun here, with the isolation they need
        conn.execute("set timezone to 'UTC'")
    source.execute("begin isolation level repeatable read read only")
    try:
        return _copy_in_one_snapshot(source, target, schema, leave, fresh_source)
    finally:
        source.execute("rollback")  # the snapshot only read


def _copy_in_one_snapshot(
    source: psycopg.Connection,
    target: psycopg.Connection,
    schema: str,
    leave: frozenset[str],
    fresh_source: psycopg.Connection | None,
) -> list[TableMoved]:
    tables = {name: columns for name, columns in base_tables(source, schema).items() if name not in leave}
    on_target = base_tables(target, schema)
    missing = sorted(set(tables) - set(on_target))
    if missing:
        raise LoaderError(
            f"the target has no table {', '.join(f'{schema}.{name}' for name in missing)}; run `jupyterhub-metrics db"
            " migrate` there first, or leave a table that is not the project's behind with --leave NAME"
        )
    for name, columns in tables.items():
        absent = [column for column in columns if column not in on_target[name]]
        if absent:
            raise LoaderError(
                f"the target's {schema}.{name} has no column {', '.join(absent)}; migrate both databases with the"
                " same version of jupyterhub-metrics first"
            )
    moved = []
    with target.transaction():
        for name in tables:
            holds = target.execute(
                sql.SQL("select exists (select 1 from {}.{})").format(sql.Identifier(schema), sql.Identifier(name))
            ).fetchone()
            if holds and holds[0]:
                raise LoaderError(
                    f"the target's {schema}.{name} already holds rows; move the history into a freshly migrated"
                    " database (nothing was written)"
                )
        for name, columns in tables.items():
            column_list = sql.SQL(", ").join(map(sql.Identifier, columns))
            table_id = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))
            with (
                source.cursor().copy(
                    sql.SQL("copy (select {} from {}) to stdout (format binary)").format(column_list, table_id)
                ) as rows_out,
                target.cursor().copy(
                    sql.SQL("copy {} ({}) from stdin (format binary)").format(table_id, column_list)
                ) as rows_in,
            ):
                for block in rows_out:
                    rows_in.write(block)
            before = table_checksum(source, schema, name, columns)
            after = table_checksum(target, schema, name, columns)
            if before != after:
                raise LoaderError(
                    f"{schema}.{name} differs after the copy ({before[0]} rows, checksum {before[1]}, against"
                    f" {after[0]}, {after[1]}); nothing was written"
                )
            moved.append(TableMoved(name, *before))
        _carry_sequences(source, target, schema)
        if fresh_source is not None and latest_run(fresh_source, schema) != latest_run(source, schema):
            raise LoaderError(
                "the source was written to while the history was copied; stop its collections (suspend the"
                " CronJobs) and other writers, then move again (nothing was written)"
            )
    return moved


def _carry_sequences(source: psycopg.Connection, target: psycopg.Connection, schema: str) -> None:
    """The target's sequences continue where the source's are (the next collector run's id follows the moved ones)."""
    for name, last_value, called in source.execute(
        "select sequencename, last_value, last_value is not null from pg_sequences where schemaname = %s", (schema,)
    ).fetchall():
        if called:
            target.execute(
                "select setval(format('%%I.%%I', %s::text, %s::text)::regclass, %s)", (schema, name, last_value)
            )

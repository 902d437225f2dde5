"""A read-only database role (for Grafana): reads what the dashboards read, writes nothing, and cannot run long."""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

from loader.config import IDENTIFIER, Settings
from loader.errors import ConfigurationError

log = logging.getLogger(__name__)


def ensure_readonly_role(
    conn: psycopg.Connection,
    role: str,
    password: str,
    schemas: list[str],
    *,
    statement_timeout_seconds: int = 60,
    restrict_other_databases: bool = False,
) -> list[str]:
    """Creates or updates `role`; idempotent. The password is sent hashed (SCRAM), never as clear text.

    The role may connect to this database only, read only the relations the dashboards read (granted by the
    dbt macro grant_dashboard_reads, after every build), create no temporary tables, and run no statement
    longer than the timeout. PostgreSQL lets any role SET its own statement_timeout, so the limit is also
    enforced from outside: cancel_overrunning_reader_queries, which the loader's own role may do because it
    is made a member of `role`. Returns the other databases the role can still connect to.
    """
    if not IDENTIFIER.match(role):
        raise ConfigurationError(f"read-only role name {role!r} is not a plain lower-case identifier")
    if not password:
        raise ConfigurationError("READONLY_DB_PASSWORD is empty: the read-only role needs a password")
    role_id = sql.Identifier(role)
    database_id = sql.Identifier(conn.info.dbname)
    with conn.transaction():
        existing = conn.execute(
            "select rolsuper or rolcreatedb or rolcreaterole or rolbypassrls from pg_roles where rolname = %s", (role,)
        ).fetchone()
        if existing is None:
            conn.execute(sql.SQL("create role {} login nosuperuser nocreatedb nocreaterole noinherit").format(role_id))
        elif existing[0]:
            raise ConfigurationError(
                f"role {role} exists with more than read rights (superuser, createdb, createrole or bypassrls); "
                "choose another READONLY_DB_USER or remove those rights"
            )
        verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
        conn.execute(sql.SQL("alter role {} with login password {}").format(role_id, sql.Literal(verifier)))
        for setting, value in (
            ("statement_timeout", f"{statement_timeout_seconds}s"),
            ("idle_in_transaction_session_timeout", f"{statement_timeout_seconds}s"),
            ("default_transaction_read_only", "on"),
        ):
            conn.execute(
                sql.SQL("alter role {} set {} = {}").format(role_id, sql.Identifier(setting), sql.Literal(value))
            )
        # Only the database owner keeps TEMP (dbt needs it); PUBLIC, and so this role, loses it here.
        conn.execute(sql.SQL("revoke temporary on database {} from public").format(database_id))
        conn.execute(sql.SQL("revoke temporary on database {} from {}").format(database_id, role_id))
        conn.execute(sql.SQL("grant connect on database {} to {}").format(database_id, role_id))
        # The loader's role may cancel this role's queries (cancel_overrunning_reader_queries).
        conn.execute(sql.SQL("grant {} to current_user").format(role_id))
        for schema in schemas:
            schema_id = sql.Identifier(schema)
            conn.execute(sql.SQL("create schema if not exists {}").format(schema_id))
            conn.execute(sql.SQL("grant usage on schema {} to {}").format(schema_id, role_id))
            # Earlier versions granted every table; now only what the dashboards read (grant_dashboard_reads).
            conn.execute(sql.SQL("revoke select on all tables in schema {} from {}").format(schema_id, role_id))
            conn.execute(
                sql.SQL("alter default privileges in schema {} revoke select on tables from {}").format(
                    schema_id, role_id
                )
            )
        conn.execute(sql.SQL("alter role {} reset search_path").format(role_id))
        if restrict_other_databases:
            owned = conn.execute(
                "select datname from pg_database where datname <> current_database() and datallowconn"
                " and (pg_has_role(datdba, 'member') or (select rolsuper from pg_roles where rolname = current_user))"
            ).fetchall()
            for (name,) in owned:
                conn.execute(sql.SQL("revoke connect on database {} from public").format(sql.Identifier(name)))
                conn.execute(sql.SQL("revoke connect on database {} from {}").format(sql.Identifier(name), role_id))
    reachable = conn.execute(
        "select datname from pg_database where datname <> current_database() and datallowconn"
        " and has_database_privilege(%s, oid, 'connect') order by 1",
        (role,),
    ).fetchall()
    return [name for (name,) in reachable]


def cancel_overrunning_reader_queries(conn: psycopg.Connection, role: str, statement_timeout_seconds: int) -> int:
    """Cancels the role's statements running past the timeout (a role that SET its own timeout higher)."""
    cancelled = conn.execute(
        "select count(*) filter (where pg_cancel_backend(pid)) from pg_stat_activity"
        " where usename = %s and state = 'active' and now() - query_start > make_interval(secs => %s)",
        (role, statement_timeout_seconds),
    ).fetchone()
    return int(cancelled[0]) if cancelled else 0


def enforce_reader_timeout(settings: Settings) -> None:
    """A role may SET its own statement_timeout: every collection cancels the dashboards' role's statements that run
    past it. Never fails the collection (one log line when it cannot look)."""
    from loader.db import connect
    from loader.errors import LoaderError

    try:
        with connect(settings.database, autocommit=True) as conn:
            cancelled = cancel_overrunning_reader_queries(
                conn, settings.readonly_role, settings.readonly_statement_timeout_seconds
            )
    except (LoaderError, psycopg.Error) as error:
        log.warning("could not check the read-only role's statements: %s", error)
        return
    if cancelled:
        log.warning(
            "cancelled %d statement(s) of %s running past %d s",
            cancelled,
            settings.readonly_role,
            settings.readonly_statement_timeout_seconds,
        )

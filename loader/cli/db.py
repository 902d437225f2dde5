"""`jupyterhub-metrics db`: the raw schema and the dashboards' read-only role."""

from __future__ import annotations

import json

import typer

from loader.cli.common import command, settings

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("migrate")
@command
def migrate() -> None:
    """Apply bootstrap_sql/*.sql that are not applied yet (each in one transaction)."""
    from loader.db import connect
    from loader.migrate import migrate as apply

    config = settings()
    with connect(config.database) as conn:
        applied = apply(conn, config.raw_schema, config.bootstrap_sql_dir)
    typer.echo(
        f"applied {len(applied)} bootstrap SQL file(s) to schema {config.raw_schema}: {', '.join(applied)}"
        if applied
        else f"schema {config.raw_schema} is up to date"
    )


@app.command("readonly-role")
@command
def readonly_role(
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
    from loader.errors import LoaderError
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


@app.command("move-history")
@command
def move_history(
    to: str = typer.Option(
        ...,
        "--to",
        help="The target database as a libpq connection string or URL (a password is best left to PGPASSWORD or "
        "~/.pgpass). Migrate it first with `db migrate` pointed at it.",
    ),
    leave: list[str] = typer.Option(
        [], "--leave", help="A table of the raw schema not to move (one that is not the project's); repeatable."
    ),
) -> None:
    """Copy every raw table's rows from this database (DB_*) into another one, such as a Citus coordinator: one
    snapshot of the source, one transaction of the target, each table's rows and checksum compared before it
    commits. The source is only read; stop its collections first."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from loader.db import connect, first_line
    from loader.errors import DatabaseUnavailable
    from loader.move import move_history as move

    config = settings(demo_fallback=False)
    parameters = {key: value for key, value in conninfo_to_dict(to).items() if value is not None}
    where = (
        f"{parameters.get('user', '')}@{parameters.get('host', 'localhost')}:{parameters.get('port', 5432)}"
        f"/{parameters.get('dbname', '')}"
    )
    try:
        target = psycopg.connect(**parameters)  # type: ignore[arg-type]  # libpq keywords
    except psycopg.OperationalError as error:
        reason = first_line(str(error), str(parameters.get("password", "")))
        raise DatabaseUnavailable(f"cannot connect to the target database {where}: {reason}") from None
    with (
        connect(config.database, autocommit=True) as source,
        connect(config.database, autocommit=True) as fresh,
        target,
    ):
        moved = move(source, target, config.raw_schema, leave=frozenset(leave), fresh_source=fresh)
    for table in moved:
        typer.echo(f"{config.raw_schema}.{table.table}: {table.rows} rows, checksum {table.checksum}, equal on both")
    typer.echo(
        f"moved {sum(table.rows for table in moved)} rows of {len(moved)} tables from {config.database.describe()}"
        f" to {where}; run `jupyterhub-metrics build` there"
    )

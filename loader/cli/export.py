"""`jupyterhub-metrics export`: the marts as files others open."""

from __future__ import annotations

from pathlib import Path

import typer

from loader.cli.common import command, settings

app = typer.Typer(help="Exports of the marts.", no_args_is_help=True)


@app.command("usage")
@command
def usage(
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
    from loader.export import export_usage

    rows = export_usage(settings(), out, pseudonymize=pseudonymize, min_users=min_users)
    typer.echo(f"wrote {rows} users to {out}" + (" (pseudonymised)" if pseudonymize else ""))


@app.command("departments")
@command
def departments(
    out: Path = typer.Option(Path("department_usage.csv"), "--out", help="CSV file to write."),
    min_users: int = typer.Option(5, "--min-users", min=1, help="Suppress department-months with fewer users."),
) -> None:
    """Write department_usage as CSV, leaving out departments with fewer than --min-users users in a month."""
    from loader.export import export_departments

    written, suppressed = export_departments(settings(), out, min_users=min_users)
    typer.echo(f"wrote {written} department-months to {out}; suppressed {suppressed} with fewer than {min_users} users")


@app.command("groups")
@command
def groups(
    out: Path = typer.Option(Path("group_term_usage.csv"), "--out", help="CSV file to write."),
    min_users: int = typer.Option(5, "--min-users", min=1, help="Suppress term-groups with fewer users."),
) -> None:
    """Write group_term_usage (per academic term and hub group) as CSV, leaving out groups with fewer than
    --min-users users in a term."""
    from loader.export import export_groups

    written, suppressed = export_groups(settings(), out, min_users=min_users)
    typer.echo(f"wrote {written} term-groups to {out}; suppressed {suppressed} with fewer than {min_users} users")


@app.command("xdmod")
@command
def xdmod(
    out: Path = typer.Option(Path("xdmod_cloud_events.json"), "--out", help="JSON-lines file to write."),
    since: str = typer.Option(
        None, "--since", help="Only sessions that ended on or after this UTC day (YYYY-MM-DD): the next export's start."
    ),
    pseudonymize: bool = typer.Option(
        False, "--pseudonymize", help="Users as keyed HMACs (EXPORT_HMAC_KEY), as `export usage --pseudonymize`."
    ),
) -> None:
    """Write closed sessions as Open XDMoD Cloud-realm events (its generic JSON format, one event per line): START,
    a STATE_REPORT at each midnight, STOP, with the cores, memory and GPUs the pod requested."""
    from datetime import date

    from loader.errors import ConfigurationError
    from loader.xdmod import export_xdmod

    try:
        first_day = date.fromisoformat(since) if since else None
    except ValueError:
        raise ConfigurationError(f"--since {since!r} is not a day; give it as YYYY-MM-DD") from None
    sessions, events = export_xdmod(settings(), out, since=first_day, pseudonymize=pseudonymize)
    typer.echo(f"wrote {events} events of {sessions} closed sessions to {out}")

"""`jupyterhub-metrics export`: the marts as files others open."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from loader.cli.common import command, settings
from loader.errors import ConfigurationError


def since_day(since: str | None) -> date | None:
    """--since as a UTC day; one line where it is not one."""
    try:
        return date.fromisoformat(since) if since else None
    except ValueError:
        raise ConfigurationError(f"--since {since!r} is not a day; give it as YYYY-MM-DD") from None


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


@app.command("stale-homes")
@command
def stale_homes(
    out: Path = typer.Option(Path("stale_homes.csv"), "--out", help="CSV file to write."),
) -> None:
    """Write stale_homes (the offboarding and archive list: volumes whose owner's last session ended more than
    STALE_HOME_DAYS ago, has none, or matches nobody) as CSV, largest first."""
    from loader.export import export_stale_homes

    typer.echo(f"wrote {export_stale_homes(settings(), out)} stale homes to {out}")


@app.command("allocations")
@command
def allocations(
    out: Path = typer.Option(Path("allocations.csv"), "--out", help="CSV file to write."),
) -> None:
    """Write allocation_status (each allocation's used, remaining, burn rate, projected exhaustion, status) as CSV,
    with the ColdFront attribute and value to enter as its usage (Accelerator Usage (Hours), Core Usage (Hours))."""
    from loader.export import export_allocations

    typer.echo(f"wrote {export_allocations(settings(), out)} allocations to {out}")


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
    from loader.xdmod import export_xdmod

    first_day = since_day(since)
    sessions, events = export_xdmod(settings(), out, since=first_day, pseudonymize=pseudonymize)
    typer.echo(f"wrote {events} events of {sessions} closed sessions to {out}")


@app.command("xdmod-storage")
@command
def xdmod_storage(
    out: Path = typer.Option(Path("xdmod_storage.json"), "--out", help="JSON file to write (one array)."),
    since: str = typer.Option(
        None, "--since", help="Every complete UTC day from this one (YYYY-MM-DD); default: the latest complete day."
    ),
    resource: str = typer.Option("jupyterhub", "--resource", help="The XDMoD resource the records belong to."),
    mountpoint: str = typer.Option("/home", "--mountpoint", help="The mountpoint XDMoD shows them under."),
    pseudonymize: bool = typer.Option(
        False, "--pseudonymize", help="Users as keyed HMACs (EXPORT_HMAC_KEY), as `export usage --pseudonymize`."
    ),
) -> None:
    """Write each user's storage per day as Open XDMoD Storage-realm records (its JSON storage format), for
    `xdmod-shredder -f storage`."""
    from loader.xdmod_storage import export_xdmod_storage

    first_day = since_day(since)
    written, left_out = export_xdmod_storage(
        settings(), out, since=first_day, resource=resource, mountpoint=mountpoint, pseudonymize=pseudonymize
    )
    typer.echo(
        f"wrote {written} storage records to {out}"
        + (f"; left out {left_out} volume-days whose owner matches nobody" if left_out else "")
    )

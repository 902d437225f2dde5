"""`jupyterhub-metrics report`: the monthly or term statement a department head opens."""

from __future__ import annotations

from pathlib import Path

import typer

from loader.cli.common import command, settings


@command
def report(
    month: str = typer.Option(None, "--month", help="The calendar month, YYYY-MM (UTC days)."),
    term: str = typer.Option(None, "--term", help="An academic term of seeds/terms.csv, by name."),
    department: str = typer.Option(None, "--department", help="Only this department (and the hub's totals)."),
    out: Path = typer.Option(Path("report.html"), "--out", help="HTML file to write."),
    pseudonymize: bool = typer.Option(
        False, "--pseudonymize", help="Report departments with fewer than --min-users users together as Other."
    ),
    min_users: int = typer.Option(5, "--min-users", min=1, help="With --pseudonymize: the smallest group shown."),
) -> None:
    """Write one self-contained HTML report (no script, no network, charts inline) for a month or a term: per
    department and for the whole hub, every figure read from the marts."""
    from loader.report import write_report

    written = write_report(
        settings(), out, month=month, term=term, department=department, pseudonymize=pseudonymize, min_users=min_users
    )
    departments = len(written.scopes) - 1
    typer.echo(f"wrote {out}: {written.period.label}, the hub and {departments} departments")

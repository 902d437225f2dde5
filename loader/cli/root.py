"""The root of the command line: global options, the command groups and the top-level commands."""

from __future__ import annotations

import logging
import sys

import typer

from loader.cli import build, collect, db, demo, export, report, users
from loader.cli.common import DEBUG

app = typer.Typer(help="Usage accounting for JupyterHub on Kubernetes.", no_args_is_help=True, add_completion=False)
app.add_typer(db.app, name="db")
app.add_typer(users.app, name="users")
app.add_typer(export.app, name="export")
app.command()(collect.collect)
app.command()(build.build)
app.command()(build.check)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(build.dbt)
app.command()(demo.demo)
app.command()(report.report)


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


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    app()

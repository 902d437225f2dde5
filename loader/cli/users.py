"""`jupyterhub-metrics users`: directory data from Microsoft Graph."""

from __future__ import annotations

import sys
from contextlib import ExitStack, contextmanager

import typer

from loader.cli.common import command, settings

app = typer.Typer(help="Directory users (Microsoft Graph).", no_args_is_help=True)


@app.command("sync")
@command
def sync(
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

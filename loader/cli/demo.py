"""`jupyterhub-metrics demo`: a synthetic hub, loaded and built."""

from __future__ import annotations

import typer

from loader.cli.common import command, settings


@command
def demo(
    days: int = typer.Option(30, help="Days of synthetic history."),
    users: int = typer.Option(120, help="Synthetic users."),
    seed: int = typer.Option(7, help="Random seed: the same seed gives the same hub."),
) -> None:
    """Load a synthetic hub (into an embedded PostgreSQL when no DB_* is set) and build the project."""
    from loader.demo import run_demo

    run_demo(settings(demo_fallback=False), days=days, users=users, seed=seed)

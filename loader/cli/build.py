"""`jupyterhub-metrics build`, `check` and `dbt`: the dbt project, as the 5-minute cycle and the daily check run it."""

from __future__ import annotations

import typer

from loader.cli.common import JSON_HELP, command, print_json, settings


@command
def build(
    full_refresh: bool = typer.Option(
        False, "--full-refresh", help="Rebuild the marts from all history (after a change of the rules)."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The dbt build that follows every collection (models, seeds and snapshots; `check` runs the data tests)."""
    from loader.build import FailedBuild
    from loader.build import build as run_build
    from loader.dbt_runner import DbtOutcome

    try:
        result = run_build(settings(), full_refresh=full_refresh, output_to_stderr=as_json)
    except Exception as error:
        if not hasattr(error, "result"):
            # It failed outside dbt (one of the loader's own statements, the connection): nothing was published
            # either, and --json says so; the error keeps its message and exit code.
            error.result = FailedBuild(DbtOutcome("build", False), "loader")  # type: ignore[attr-defined]
        raise
    if result.rebuilt_from_version:
        typer.echo(
            f"the marts were built under rules version {result.rebuilt_from_version!r}; rebuilt them from all history",
            err=True,
        )
    if result.rules_changed:
        typer.echo(
            "warning: the rules changed since the last build ("
            + "; ".join(f"{rule} {old} -> {new}" for rule, (old, new) in sorted(result.rules_changed.items()))
            + "): new sessions follow them, history does not yet; run `jupyterhub-metrics build --full-refresh`"
            " to apply them to all history",
            err=True,
        )
    if as_json:
        print_json(result.summary())


@command
def check(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Data quality: every dbt data test, then source freshness (is the collector running?). Exit code 3 when a
    test fails or a source is stale."""
    from loader.build import check as run_check

    result = run_check(settings(), output_to_stderr=as_json)
    if as_json:
        print_json(result.summary())


@command
def dbt(ctx: typer.Context) -> None:
    """Run dbt (e.g. `dbt build`) on the bundled project with the loader's database settings."""
    from loader.dbt_runner import run_dbt

    if not run_dbt(settings(), list(ctx.args)):
        raise typer.Exit(1)

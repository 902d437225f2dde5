"""What every command shares: the settings, and the one way a command ends (errors as one line and an exit code;
with --json, the run's summary or the failure as one JSON object on stdout)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from loader.config import Settings, load_settings
from loader.errors import LoaderError, exit_code_for, one_line_failure

F = TypeVar("F", bound=Callable[..., Any])
JSON_HELP = "Print the run's summary as one JSON object on stdout (logs and dbt's output go to stderr)."


class DEBUG:
    """--debug (or JHM_DEBUG=1): tracebacks instead of one-line errors."""

    enabled = False


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


def print_json(document: dict[str, Any]) -> None:
    typer.echo(json.dumps(document, default=str, sort_keys=False))


def failure_message(command_name: str, error: BaseException) -> str:
    import psycopg

    if isinstance(error, LoaderError):
        return str(error)
    if isinstance(error, psycopg.Error):
        detail = " ".join((getattr(error.diag, "message_primary", None) or str(error)).split())[:300]
        return f"the database refused the command ({detail}); check the database and run again"
    return one_line_failure(command_name, error)


def command(function: F) -> F:
    """Ends the command with `Error: <message>` on stderr and the error's exit code, never a traceback (--debug
    shows it). A command with an `as_json` parameter set prints the failure as JSON on stdout too."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as error:
            if DEBUG.enabled:
                raise
            name = function.__name__.replace("_", " ")
            message = failure_message(name, error)
            code = exit_code_for(error)
            typer.echo(f"Error: {message}", err=True)
            if kwargs.get("as_json"):
                document: dict[str, Any] = {"command": name, "status": "failed", "exit_code": int(code)}
                summary = getattr(getattr(error, "result", None), "summary", None)
                document.update(summary() if summary else {})
                document.update({"status": "failed", "exit_code": int(code), "error": message})
                print_json(document)
            raise typer.Exit(int(code)) from None

    return wrapper  # type: ignore[return-value]

"""Errors that the CLI ends with one line on stderr, never a traceback, and their exit codes (spec 5), in one place:
0 the run was recorded; 1 it failed (database, API or file could not be used; nothing partial written); 2 a wrong
command line or configuration; 3 `check` found failing data tests or stale sources."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    CHECKS_FAILED = 3


class LoaderError(Exception):
    """A failure with a message that says what failed and what to fix, in one line."""

    exit_code = ExitCode.FAILED

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ConfigurationError(LoaderError):
    """A setting, flag value or key that cannot be used as given."""

    exit_code = ExitCode.USAGE


class ChecksFailed(LoaderError):
    """Data tests failed or a source is stale: the checks ran, and found something."""

    exit_code = ExitCode.CHECKS_FAILED

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class BuildFailed(LoaderError):
    """A build that did not finish: `result.summary()` says how far it got (`--json`)."""

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class DatabaseUnavailable(LoaderError):
    pass


class MigrationError(LoaderError):
    pass


class KubernetesError(LoaderError):
    pass


class GraphError(LoaderError):
    pass


def exit_code_for(error: BaseException) -> ExitCode:
    """The one mapping from what went wrong to the exit code (click's usage errors exit 2 by themselves)."""
    return error.exit_code if isinstance(error, LoaderError) else ExitCode.FAILED


def one_line_failure(what: str, error: BaseException) -> str:
    """An unexpected exception as one line: what was running, the exception's kind and first line (no traceback,
    no secrets beyond what the exception says; the CLI's --debug shows the traceback)."""
    import psycopg

    if isinstance(error, psycopg.Error):
        detail = getattr(error.diag, "message_primary", None) or str(error)
        return f"{what} failed in the database ({' '.join(detail.split())[:300]}); check the database and run again"
    detail = " ".join(str(error).split())[:300]
    return f"{what} failed unexpectedly ({type(error).__name__}: {detail}); run again with --debug for the traceback"

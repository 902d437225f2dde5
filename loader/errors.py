"""Errors that the CLI ends with one line on stderr and exit code 1, never a traceback."""


class LoaderError(Exception):
    """A failure with a message that says what failed and what to fix, in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ConfigurationError(LoaderError):
    pass


class DatabaseUnavailable(LoaderError):
    pass


class MigrationError(LoaderError):
    pass


class KubernetesError(LoaderError):
    pass


class GraphError(LoaderError):
    pass


def one_line_failure(what: str, error: BaseException) -> str:
    """An unexpected exception as one line: what was running, the exception's kind and first line (no traceback,
    no secrets beyond what the exception says; the CLI's --debug shows the traceback)."""
    import psycopg

    if isinstance(error, psycopg.Error):
        detail = getattr(error.diag, "message_primary", None) or str(error)
        return f"{what} failed in the database ({' '.join(detail.split())[:300]}); check the database and run again"
    detail = " ".join(str(error).split())[:300]
    return f"{what} failed unexpectedly ({type(error).__name__}: {detail}); run again with --debug for the traceback"

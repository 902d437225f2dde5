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

"""The `jupyterhub-metrics` command line: one module per command group, registered on the root app in root.py.
Every command ends with one line on stderr and an exit code from loader.errors.exit_code_for, never a traceback."""

from loader.cli.root import app, main

__all__ = ["app", "main"]

"""Runs dbt in-process against the configured database (saves the start-up of a new interpreter per call)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loader.config import Settings
from loader.errors import ConfigurationError, LoaderError

# A complete build: every model, seed and snapshot (data tests run on their own schedule, below).
COMPLETE_BUILD_ARGS = ["build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
# What runs after every collection once the same files and rules were built completely: the selector `cycle` of
# dbt_project/selectors.yml (incremental models, tables, the snapshot), whose cost follows new data.
CYCLE_SELECTOR = "cycle"
# Writing manifest.json and run_results.json costs about half a second per build; the cycle's are not read.
CYCLE_ARGS = ["--selector", CYCLE_SELECTOR, "--no-write-json"]
# Data quality, on its own schedule: data tests read whole tables, so their cost follows history.
# (Unit tests are development checks; `make test` runs them.)
CHECK_TEST_ARGS = ["test", "--exclude-resource-type", "unit_test", "--vars", '{"cluster_freshness_severity": "error"}']
CHECK_FRESHNESS_ARGS = ["source", "freshness"]
# dbt commands that write to the analytics schema: two at once (a CronJob and a person) would trip over each
# other's tables, so each takes this database advisory lock first and waits for the other, within a bound.
WRITING_COMMANDS = {"build", "run", "snapshot", "seed", "test"}
BUILD_LOCK_KEY = 7_361_003


def target_dir(settings: Settings) -> Path:
    """Where dbt writes its artifacts (manifest.json, catalog.json, compiled SQL): DBT_TARGET_PATH, as dbt reads it,
    else the project's target folder."""
    configured = os.environ.get("DBT_TARGET_PATH")
    return Path(configured) if configured else settings.dbt_project_dir / "target"


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class DbtOutcome:
    """What a dbt command did: success, how many nodes ended in each status, and the failing ones with the first
    line of their message."""

    command: str
    success: bool
    statuses: dict[str, int] = field(default_factory=dict)
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    seconds: float = 0.0
    # each node's execution time (compilation and materialization included), by node name
    node_seconds: dict[str, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.success

    def first_problem(self) -> str:
        if not self.problems:
            return f"dbt {self.command} failed; dbt's output above says why"
        name, status, message = self.problems[0]
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"dbt {self.command} failed: {name} ({status}): {message}{more}"

    def summary(self) -> dict[str, object]:
        return {
            "statuses": dict(sorted(self.statuses.items())),
            "problems": [
                {"node": name, "status": status, "message": message} for name, status, message in self.problems
            ],
            "seconds": round(self.seconds, 3),
        }


PROBLEM_STATUSES = {"error", "fail", "warn", "runtime error", "skipped"}


def _message_line(message: str | None) -> str:
    """The line of a dbt message that says what is wrong: not dbt's own header ("Compilation Error in model ...")."""
    lines = [" ".join(line.split()) for line in (message or "").splitlines() if line.strip()]
    useful = [line for line in lines if not re.match(r"^(Compilation|Database|Runtime) Error( in |$)", line)]
    return (useful or lines or [""])[0][:400]


def outcome_of(command: str, result: Any, seconds: float) -> DbtOutcome:
    statuses: Counter[str] = Counter()
    problems = []
    node_seconds = {}
    for item in getattr(result.result, "results", None) or []:
        node = getattr(item, "node", None)
        if getattr(node, "resource_type", None) == "operation":  # on-run-start/end hooks
            continue
        status = str(getattr(item.status, "value", item.status))
        statuses[status] += 1
        node_seconds[getattr(node, "name", "?")] = float(getattr(item, "execution_time", 0.0) or 0.0)
        if status in PROBLEM_STATUSES - {"skipped"}:
            problems.append((getattr(node, "name", "?"), status, _message_line(getattr(item, "message", None))))
    return DbtOutcome(command, bool(result.success), dict(statuses), problems, seconds, node_seconds)


def _calling_module_name() -> str:
    """What dbt_common's BehaviorFlagRendered._default_source answers (the first module on the stack other than
    dbt_common.behavior_flags), read from the frames' globals instead of inspect.stack(). dbt-adapters computes it
    for every behavior flag of every adapter it registers, i.e. at every invocation, even when the flag names its
    source; inspect.stack() reads the source lines of every frame and looks each frame's module up in sys.modules,
    so in a long-lived process with a deep stack (a test worker) each dbt call cost seconds more than the one a
    thousand calls before (dbt-labs/dbt-adapters#2136). Nothing else about the flags changes."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if name and name != "dbt_common.behavior_flags":
            return str(name)
        frame = frame.f_back  # type: ignore[assignment]
    return "Unknown"


def _without_stack_inspection() -> None:
    from dbt_common import behavior_flags

    behavior_flags.BehaviorFlagRendered._default_source = staticmethod(_calling_module_name)  # type: ignore[method-assign]


def run_dbt(
    settings: Settings,
    args: list[str],
    *,
    output_to_stderr: bool = False,
    environment: dict[str, str] | None = None,
    lock_held: bool = False,
) -> DbtOutcome:
    """`dbt ARGS` with --project-dir and --profiles-dir filled in. dbt's log goes to stdout, or to stderr when stdout
    carries a result (`--json`). A writing command takes the build lock, unless the caller holds it (`lock_held`)."""
    from dbt.cli.main import dbtRunner

    _without_stack_inspection()
    project_dir = settings.dbt_project_dir
    if not (project_dir / "dbt_project.yml").is_file():
        raise ConfigurationError(f"no dbt project at {project_dir}; set DBT_PROJECT_DIR")
    profiles_dir = os.environ.get("DBT_PROFILES_DIR") or str(project_dir)
    full_args = list(args)
    command_words = {"--project-dir": str(project_dir), "--profiles-dir": profiles_dir}
    if full_args and full_args[0] not in ("deps", "init", "--version"):
        for flag, value in command_words.items():
            if flag not in full_args:
                full_args += [flag, value]
    stream = sys.stderr if output_to_stderr else sys.stdout
    # Colour codes only on a terminal: CronJob logs and pipes get plain text (DBT_USE_COLORS still wins).
    colours = {} if "DBT_USE_COLORS" in os.environ else {"DBT_USE_COLORS": str(stream.isatty()).lower()}
    exclusive = bool(args) and args[0] in WRITING_COMMANDS and not lock_held
    began = time.monotonic()
    with (
        build_lock(settings, exclusive),
        _environment({**settings.dbt_environment(), **colours, **(environment or {})}),
        contextlib.redirect_stdout(stream),
    ):
        result = dbtRunner().invoke(full_args)
    if result.exception is not None:
        raise LoaderError(f"dbt {' '.join(args[:1])} could not run: {' '.join(str(result.exception).split())[:300]}")
    return outcome_of(" ".join(args[:1]), result, time.monotonic() - began)


@contextmanager
def build_lock(settings: Settings, exclusive: bool = True) -> Iterator[None]:
    """Holds BUILD_LOCK_KEY on a connection of its own while dbt runs; waits at most build_lock_wait_seconds."""
    if not exclusive:
        yield
        return
    from loader.db import connect, scalar

    with connect(settings.database, autocommit=True) as conn:
        deadline = time.monotonic() + settings.build_lock_wait_seconds
        while not scalar(conn.execute("select pg_try_advisory_lock(%s)", (BUILD_LOCK_KEY,))):
            if time.monotonic() >= deadline:
                raise LoaderError(
                    f"another build or check has been running on {settings.database.describe()} for more than "
                    f"{settings.build_lock_wait_seconds:.0f} s, so this one did not start; "
                    "run it again when that one ends"
                )
            time.sleep(1.0)
        try:
            yield
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (BUILD_LOCK_KEY,))

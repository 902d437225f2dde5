"""The single source of the Grafana dashboards: `python -m grafana.build_dashboards` writes grafana/dashboards/*.json,
which the Helm chart ships as they are (a test checks they match), and the dbt exposures of what each dashboard
reads (grafana/exposures.py). Each dashboard is a module of grafana/boards; the pieces are in grafana/panels.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana import alerts, exposures
from grafana.boards import (
    activity,
    allocations,
    applications,
    demographics,
    gpus,
    nodes,
    overview,
    starts,
    storage,
    user_detail,
    users,
)
from grafana.exposures import EXPOSURES, exposures_yaml, relations_read
from grafana.panels import RELATION, dbt_references

DASHBOARDS = Path(__file__).resolve().parent / "dashboards"
BOARDS = {
    "overview": overview.board,
    "users": users.board,
    "user-detail": user_detail.board,
    "demographics": demographics.board,
    "applications": applications.board,
    "nodes": nodes.board,
    "gpus": gpus.board,
    "starts": starts.board,
    "activity": activity.board,
    "storage": storage.board,
    "allocations": allocations.board,
}

__all__ = ["EXPOSURES", "RELATION", "all_dashboards", "dbt_references", "exposures_yaml", "relations_read", "rendered"]


def all_dashboards() -> dict[str, dict]:
    return {name: board() for name, board in BOARDS.items()}


def rendered() -> dict[str, str]:
    return {f"{name}.json": json.dumps(board, indent=2) + "\n" for name, board in all_dashboards().items()}


def main() -> None:
    DASHBOARDS.mkdir(exist_ok=True)
    files = rendered()
    for name, text in files.items():
        (DASHBOARDS / name).write_text(text)
    for stale in {path.name for path in DASHBOARDS.glob("*.json")} - set(files):
        (DASHBOARDS / stale).unlink()
    exposures.write(all_dashboards())
    alerts.write()
    print(f"wrote {len(files)} dashboards to {DASHBOARDS}", file=sys.stderr)


if __name__ == "__main__":
    main()

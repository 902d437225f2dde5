"""The pieces every dashboard is made of: panels, variables, and the schema-qualified SQL they run.

Dashboards import anywhere: the data source is a dashboard variable (`${datasource}`, any PostgreSQL data source),
and every relation is schema-qualified with the constants `${analytics_schema}` and `${raw_schema}` (defaults
`analytics` and `raw`; change them in the dashboard's settings, or the chart sets them), so no search_path is
assumed. Panels read mart columns (GPU or CPU from node_type, efficiency from its two parts), never re-implement a
rule. Variables are interpolated with Grafana's `sqlstring` format (quoted, quotes doubled). Hours are shown as
plain hours ("suffix: h"): Grafana's `h` unit would rescale them to weeks and years.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from loader.config import DECLARED

DBT_MODELS = Path(__file__).resolve().parent.parent / "dbt_project" / "models"
RAW_SCHEMA = "raw"
# A relation after FROM or JOIN, schema-qualified or not; `is distinct from` and `extract(epoch from` name none.
RELATION = re.compile(r"(?<!distinct )(?<!epoch )\b(?:from|join)\s+(?:(\$\{\w+\}|[a-z_]+)\.)?([a-z_][a-z0-9_]*)", re.I)
RAW_SOURCE_TABLES = (
    "container_observations",
    "container_observations_overflow",
    "collector_runs",
    "users",
    "hourly_pod_usage",
)
SNAPSHOTS = ("users_history",)
DATASOURCE_TYPE = "grafana-postgresql-datasource"
DATASOURCE = {"type": DATASOURCE_TYPE, "uid": "${datasource}"}
SCHEMA_VARIABLES = {"analytics_schema": "analytics", "raw_schema": RAW_SCHEMA}
HOURS = "suffix: h"
USER = "${user:sqlstring}"
UNSET = "-"  # what the cluster and namespace variables show for rows collected without one
# Texts that name a rule's setting say its default, as the declaration has it.
SESSION_GAP = f"gaps over SESSION_GAP_MINUTES (default {DECLARED['SESSION_GAP_MINUTES'].default} minutes)"


def dbt_references() -> tuple[dict[str, str], dict[str, str]]:
    """How dbt refers to a relation a panel reads: models and snapshots (the analytics schema), and the raw
    sources. A model shadows a source of the same name (hourly_pod_usage: the analytics table is what panels read)."""
    models = {path.stem: f"ref('{path.stem}')" for path in DBT_MODELS.rglob("*.sql")}
    models.update({name: f"ref('{name}')" for name in SNAPSHOTS})
    return models, {name: f"source('raw', '{name}')" for name in RAW_SOURCE_TABLES}


def qualified(sql: str) -> str:
    """Every relation after FROM or JOIN prefixed with its schema variable: models and snapshots with
    ${analytics_schema}, raw sources with ${raw_schema}."""
    models, sources = dbt_references()

    def qualify(match: re.Match) -> str:
        schema, name = match.group(1), match.group(2)
        if schema or (name not in models and name not in sources):
            return match.group(0)
        variable = "analytics_schema" if name in models else "raw_schema"
        return match.group(0)[: match.start(2) - match.start(0)] + f"${{{variable}}}." + name

    return RELATION.sub(qualify, sql)


def reads(sql: str) -> list[str]:
    """The schema-qualified relations a query reads, for descriptions."""
    return sorted({f"{schema}.{name}" for schema, name in RELATION.findall(sql) if schema})


def in_scope(alias: str = "") -> str:
    """The dashboard's cluster and namespace selection, for a relation with those columns."""
    prefix = f"{alias}." if alias else ""
    # Plain `column in (...)`, with the unset value as its own branch (folded away unless chosen), so the planner
    # estimates the selection from the column's statistics; an expression such as coalesce(column, ...) has none
    # and is guessed at 0.5%, which turned joins of whole tables into nested loops.
    return " and ".join(
        f"({prefix}{column} in (${{{column}:sqlstring}})"
        f" or ({prefix}{column} is null and '{UNSET}' in (${{{column}:sqlstring}})))"
        for column in ("cluster", "namespace")
    )


def query_variable(name: str, label: str, query: str, *, multi: bool) -> dict:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": qualified(query),
        "definition": qualified(query),
        "refresh": 1,
        "sort": 1,
        "includeAll": multi,
        "multi": multi,
        **({"current": {"text": "All", "value": "$__all"}} if multi else {}),
    }


SOURCE_VARIABLES = [
    {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": DATASOURCE_TYPE,
        "refresh": 1,
        "hide": 0,
        "includeAll": False,
        "multi": False,
        # The chart's provisioned data source; elsewhere Grafana selects the first PostgreSQL data source.
        "current": {"text": "jupyterhub-metrics", "value": "jupyterhub-metrics"},
    },
    *(
        {"name": name, "type": "constant", "query": value, "hide": 2, "label": name.replace("_", " ")}
        for name, value in SCHEMA_VARIABLES.items()
    ),
]

SCOPE_VARIABLES = [
    query_variable(
        "cluster", "Cluster", f"select distinct coalesce(cluster, '{UNSET}') from nodes order by 1", multi=True
    ),
    query_variable(
        "namespace",
        "Namespace",
        f"select distinct coalesce(namespace, '{UNSET}') from user_sessions"
        f" where coalesce(cluster, '{UNSET}') in (${{cluster:sqlstring}}) order by 1",
        multi=True,
    ),
]
DEPARTMENT_VARIABLE = query_variable(
    "department", "Department", "select distinct department from department_usage order by 1", multi=True
)


def panel(
    title: str,
    sql: str,
    description: str,
    *,
    kind: str = "timeseries",
    fmt: str = "time_series",
    width: int = 12,
    height: int = 8,
    unit: str | None = None,
) -> dict:
    sql = qualified(" ".join(sql.split()))
    return {
        "title": title,
        "description": f"{description} Reads {', '.join(reads(sql))}.".replace("${", "").replace("_schema}", ""),
        "type": kind,
        "datasource": DATASOURCE,
        "gridPos": {"w": width, "h": height},
        "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"]}} if kind == "stat" else {},
        "targets": [
            {
                "refId": "A",
                "datasource": DATASOURCE,
                "editorMode": "code",
                "rawQuery": True,
                "format": fmt,
                "rawSql": sql,
            }
        ],
    }


def stat(title: str, sql: str, description: str, **options) -> dict:
    return panel(title, sql, description, kind="stat", fmt="table", width=options.pop("width", 8), height=4, **options)


def table(title: str, sql: str, description: str, **options) -> dict:
    return panel(title, sql, description, kind="table", fmt="table", **options)


def dashboard(uid: str, title: str, description: str, panels: list[dict], variables: Sequence[dict] = ()) -> dict:
    variables = [*SOURCE_VARIABLES, *SCOPE_VARIABLES, *variables]
    x = y = row_height = 0
    for number, item in enumerate(panels, start=1):
        width, height = item["gridPos"]["w"], item["gridPos"]["h"]
        if x + width > 24:
            x, y, row_height = 0, y + row_height, 0
        item["id"] = number
        item["gridPos"].update({"x": x, "y": y})
        x, row_height = x + width, max(row_height, height)
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["jupyterhub", "jupyterhub-metrics"],
        "timezone": "utc",
        "editable": False,
        "refresh": "5m",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-30d", "to": "now"},
        "templating": {"list": list(variables)},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["jupyterhub-metrics"], "asDropdown": True, "title": "JupyterHub"}],
        "panels": panels,
    }


# FROM clauses the dashboards share: a mart in the dashboard's time range and scope.
SESSIONS_IN_RANGE = f"from user_sessions where $__timeFilter(session_start) and {in_scope()}"
HOURLY_IN_RANGE = f"from hourly_pod_usage where $__timeFilter(bucket) and {in_scope()}"
DAYS_IN_RANGE = f"from session_days where $__timeFilter(day::timestamptz) and {in_scope()}"
MONTHS_IN_RANGE = (
    "from department_usage where month >= date_trunc('month', $__timeFrom()::timestamptz)::date"
    " and month <= $__timeTo()::timestamptz::date and department in (${department:sqlstring})"
)


def efficiency(used: str, requested: str) -> str:
    """A ratio of a mart's two efficiency parts over the rows selected (efficiency_rule): their sums, divided."""
    return f"round(sum({used}) / nullif(sum({requested}), 0), 3)"

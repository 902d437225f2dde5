"""The single source of the Grafana dashboards: `python grafana/build_dashboards.py` writes
grafana/dashboards/*.json, which the Helm chart ships as they are (a test checks they match), and the
dbt exposures of what each dashboard reads.

Dashboards import anywhere: the data source is a dashboard variable (`${datasource}`, any PostgreSQL
data source), and every relation is schema-qualified with the constants `${analytics_schema}` and
`${raw_schema}` (defaults `analytics` and `raw`; change them in the dashboard's settings, or the chart
sets them), so no search_path is assumed. GPU or CPU always comes from the marts' node_type.
Variables are interpolated with Grafana's `sqlstring` format (quoted, quotes doubled). Hours are shown
as plain hours ("suffix: h"): Grafana's `h` unit would rescale them to weeks and years.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

DASHBOARDS = Path(__file__).resolve().parent / "dashboards"
DBT_MODELS = Path(__file__).resolve().parent.parent / "dbt_project" / "models"
EXPOSURES = DBT_MODELS / "marts" / "_grafana__exposures.yml"
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
# What each panel shows, for its description (the relations it reads are added from its SQL).
DESCRIPTIONS = {
    "Active users now": "Distinct users with a session observed in the last 10 minutes.",
    "Active users, last 24 hours": "Distinct users with a session that ended in the last 24 hours.",
    "Active users, last 30 days": "Distinct users with a session that ended in the last 30 days.",
    "Sessions started": "Sessions by the time they started (the session rule: gaps over 60 minutes split).",
    "Running pods (hourly)": "Distinct pods observed in each hour.",
    "Active users (hourly)": "Distinct users with a pod observed in each hour.",
    "Users so far": "Cumulative count of users by the day they were first observed.",
    "GPU and CPU hours per day": "Hours on GPU and on CPU in each UTC day (sessions split at midnight).",
    "GPU hours held and idle per user": "Per user in the time range: GPU hours held, and of them the hours the"
    " notebook was idle (CPU below the idle threshold), with CPU used over CPU requested.",
    "GPU hours held and idle per department": "Per department in the time range: GPU hours held and idle.",
    "Cost per department": "What each department's hours cost at the rates in force (null: no rates).",
    "Top users": "The 25 users with the most session hours in the time range, with their department.",
    "GPU against CPU hours": "Session hours in the time range, split into GPU and CPU time.",
    "Hours, all time": "The user's session hours over all history.",
    "GPU hours, all time": "The user's GPU session hours over all history.",
    "Sessions, all time": "The user's sessions over all history.",
    "Hours per day": "The user's GPU and CPU hours in each UTC day (sessions split at midnight).",
    "Session timeline": "The user's sessions as a timeline, one row per pod: GPU or CPU and the image.",
    "Images used": "The user's session hours per image (container_base).",
    "Sessions": "The user's sessions in the time range, newest first.",
    "Hours by department": "GPU and CPU hours per department, attributed to the department of each month.",
    "Users per department and month": "Distinct users per department and month.",
    "Job titles": "Users and hours per job title (after the Fellowships fix-up).",
    "Departments and applications": "Users and hours per department and image.",
    "Users per image (hourly)": "Distinct users per image in each hour.",
    "Pods per image version (hourly)": "Distinct pods per image and version in each hour.",
    "Images and versions": "Users, sessions and hours per image and version in the time range.",
    "Pods on GPU and CPU nodes (hourly)": "Distinct pods on GPU and on CPU nodes (the nodes mart) in each hour.",
    "GPU device hours per day": "GPUs requested times hours, in each UTC day (sessions split at midnight).",
    "Hours per node": "Users and session hours per node in the time range.",
    "Pods per node (hourly)": "Distinct pods per node in each hour.",
}


def dbt_references() -> tuple[dict[str, str], dict[str, str]]:
    """How dbt refers to a relation a panel reads: models and snapshots (the analytics schema, first on the
    dashboards' search_path), and the raw sources."""
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


USER = "${user:sqlstring}"
UNSET = "-"  # what the cluster and namespace variables show for rows collected without one


def in_scope(alias: str = "") -> str:
    """The dashboard's cluster and namespace selection, for a relation with those columns."""
    prefix = f"{alias}." if alias else ""
    return (
        f"coalesce({prefix}cluster, '{UNSET}') in (${{cluster:sqlstring}})"
        f" and coalesce({prefix}namespace, '{UNSET}') in (${{namespace:sqlstring}})"
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


def panel(
    title: str,
    sql: str,
    *,
    kind: str = "timeseries",
    fmt: str = "time_series",
    width: int = 12,
    height: int = 8,
    unit: str | None = None,
    description: str = "",
) -> dict:
    sql = qualified(" ".join(sql.split()))
    return {
        "title": title,
        "description": f"{description or DESCRIPTIONS[title]} Reads {', '.join(reads(sql))}.".replace("${", "").replace(
            "_schema}", ""
        ),
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


def stat(title: str, sql: str, **options) -> dict:
    return panel(title, sql, kind="stat", fmt="table", width=options.pop("width", 8), height=4, **options)


def table(title: str, sql: str, **options) -> dict:
    return panel(title, sql, kind="table", fmt="table", **options)


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


def all_dashboards() -> dict[str, dict]:
    sessions_in_range = f"from user_sessions where $__timeFilter(session_start) and {in_scope()}"
    hourly_in_range = f"from hourly_pod_usage where $__timeFilter(bucket) and {in_scope()}"
    days_in_range = f"from session_days where $__timeFilter(day::timestamptz) and {in_scope()}"
    months_in_range = (
        "from department_usage where month >= date_trunc('month', $__timeFrom()::timestamptz)::date"
        " and month <= $__timeTo()::timestamptz::date and department in (${department:sqlstring})"
    )
    department_variable = query_variable(
        "department", "Department", "select distinct department from department_usage order by 1", multi=True
    )
    user_variable = query_variable(
        "user", "User", "select email from users where first_seen is not null order by email", multi=False
    )
    return {
        "overview": dashboard(
            "jhm-overview",
            "JupyterHub: overview",
            "Who is on the hub now and how use changes.",
            [
                stat(
                    "Active users now",
                    "select count(distinct user_email) as users from user_sessions"
                    f" where session_end >= now() - interval '10 minutes' and {in_scope()}",
                ),
                stat(
                    "Active users, last 24 hours",
                    "select count(distinct user_email) as users from user_sessions"
                    f" where session_end >= now() - interval '24 hours' and {in_scope()}",
                ),
                stat(
                    "Active users, last 30 days",
                    "select count(distinct user_email) as users from user_sessions"
                    f" where session_end >= now() - interval '30 days' and {in_scope()}",
                ),
                panel(
                    "Sessions started",
                    f"select $__timeGroupAlias(session_start, $__interval), count(*) as sessions"
                    f" {sessions_in_range} group by 1 order by 1",
                ),
                panel(
                    "Running pods (hourly)",
                    "select bucket as time,"
                    f" count(distinct (cluster, namespace, pod_name)) as pods {hourly_in_range} group by 1 order by 1",
                ),
                panel(
                    "Active users (hourly)",
                    "select bucket as time, count(distinct user_email) as users"
                    f" {hourly_in_range} group by 1 order by 1",
                    width=24,
                ),
            ],
        ),
        "users": dashboard(
            "jhm-users",
            "JupyterHub: users",
            "Growth, heaviest users, GPU against CPU.",
            [
                panel(
                    "Users so far",
                    "select time, sum(new_users) over (order by time) as users from ("
                    " select $__timeGroup(first_seen, '1d') as time, count(*) as new_users from users"
                    " where first_seen <= $__timeTo() group by 1) as daily order by 1",
                ),
                panel(
                    "GPU and CPU hours per day",
                    "select $__timeGroupAlias(day::timestamptz, '1d'),"
                    f" sum(gpu_hours) as gpu_hours, sum(cpu_hours) as cpu_hours {days_in_range}"
                    " group by 1 order by 1",
                    kind="barchart",
                    unit=HOURS,
                ),
                table(
                    "GPU hours held and idle per user",
                    "select user_email as user, round(sum(gpu_hours)::numeric, 2) as gpu_hours_held,"
                    " round((sum(idle_hours) filter (where node_type = 'gpu'))::numeric, 2) as gpu_hours_idle,"
                    " round(sum(avg_cpu_usage_cores * runtime_hours::numeric) filter (where cpu_request_cores > 0)"
                    " / nullif(sum(cpu_request_cores * runtime_hours::numeric)"
                    " filter (where avg_cpu_usage_cores is not null), 0), 3) as cpu_used_of_requested"
                    f" {sessions_in_range} and node_type = 'gpu' group by 1 order by 2 desc limit 25",
                    width=24,
                ),
                table(
                    "Top users",
                    "select s.user_email as user, u.department,"
                    " round(sum(s.runtime_hours)::numeric, 2) as hours,"
                    " round(sum(s.gpu_hours)::numeric, 2) as gpu_hours,"
                    " round(sum(s.cpu_hours)::numeric, 2) as cpu_hours, count(*) as sessions"
                    " from user_sessions as s left join users as u on u.email = s.user_email"
                    f" where $__timeFilter(s.session_start) and {in_scope('s')}"
                    " group by 1, 2 order by hours desc limit 25",
                    width=16,
                ),
                panel(
                    "GPU against CPU hours",
                    f"select sum(gpu_hours) as gpu_hours, sum(cpu_hours) as cpu_hours {sessions_in_range}",
                    kind="piechart",
                    fmt="table",
                    width=8,
                    unit=HOURS,
                ),
            ],
        ),
        "user-detail": dashboard(
            "jhm-user-detail",
            "JupyterHub: user detail",
            "One user's sessions, hours and images.",
            [
                stat(
                    "Hours, all time",
                    f"select round(total_hours::numeric, 2) as hours from user_session_stats where user_email = {USER}",
                    unit=HOURS,
                ),
                stat(
                    "GPU hours, all time",
                    f"select round(gpu_hours::numeric, 2) as gpu_hours from user_session_stats"
                    f" where user_email = {USER}",
                    unit=HOURS,
                ),
                stat(
                    "Sessions, all time",
                    f"select total_sessions as sessions from user_session_stats where user_email = {USER}",
                ),
                panel(
                    "Hours per day",
                    "select $__timeGroupAlias(day::timestamptz, '1d'), sum(gpu_hours) as gpu_hours,"
                    f" sum(cpu_hours) as cpu_hours from session_days where user_email = {USER}"
                    f" and $__timeFilter(day::timestamptz) and {in_scope()} group by 1 order by 1",
                    kind="barchart",
                    unit=HOURS,
                ),
                panel(
                    "Session timeline",
                    "select time, pod, state from ("
                    " select session_start as time, pod_name || ' on ' || node_name as pod,"
                    " node_type || ': ' || container_base as state from user_sessions"
                    f" where user_email = {USER} and $__timeFilter(session_start) and {in_scope()}"
                    " union all"
                    " select session_end as time, pod_name || ' on ' || node_name as pod, 'not running' as state"
                    f" from user_sessions where user_email = {USER} and $__timeFilter(session_start)"
                    f" and {in_scope()}) as changes order by time",
                    kind="state-timeline",
                    fmt="table",
                    width=24,
                ),
                panel(
                    "Images used",
                    "select container_base as image, sum(runtime_hours) as hours from user_sessions"
                    f" where user_email = {USER} and $__timeFilter(session_start) and {in_scope()}"
                    " group by 1 order by 2 desc",
                    kind="piechart",
                    fmt="table",
                    unit=HOURS,
                ),
                table(
                    "Sessions",
                    "select session_start, session_end, round(runtime_hours::numeric, 2) as hours,"
                    " cluster, namespace, node_name, node_type, container_base, container_version, server_name"
                    f" from user_sessions where user_email = {USER} and $__timeFilter(session_start) and {in_scope()}"
                    " order by session_start desc",
                    width=24,
                ),
            ],
            variables=[user_variable],
        ),
        "demographics": dashboard(
            "jhm-demographics",
            "JupyterHub: demographics",
            "Use by department (as it was when each session started) and job title.",
            [
                panel(
                    "Hours by department",
                    "select department, sum(gpu_hours) as gpu_hours, sum(cpu_hours) as cpu_hours"
                    f" {months_in_range} group by 1 order by sum(total_hours) desc",
                    kind="barchart",
                    fmt="table",
                    unit=HOURS,
                ),
                panel(
                    "GPU hours held and idle per department",
                    "select department, sum(gpu_hours) as gpu_hours_held, sum(idle_gpu_hours) as gpu_hours_idle"
                    f" {months_in_range} group by 1 order by 2 desc",
                    kind="barchart",
                    fmt="table",
                    unit=HOURS,
                ),
                panel(
                    "Cost per department",
                    "select department, round(sum(cost)::numeric, 2) as cost"
                    f" {months_in_range} group by 1 order by 2 desc nulls last",
                    kind="barchart",
                    fmt="table",
                ),
                panel(
                    "Users per department and month",
                    f"select month::timestamptz as time, department as metric, users {months_in_range} order by 1, 2",
                    kind="barchart",
                ),
                table(
                    "Job titles",
                    "select coalesce(job_title, 'Unknown') as job_title, count(distinct user_email) as users,"
                    " round(sum(runtime_hours)::numeric, 2) as hours from department_sessions"
                    " where $__timeFilter(session_start) and department in (${department:sqlstring})"
                    " group by 1 order by hours desc limit 30",
                ),
                table(
                    "Departments and applications",
                    "select department, container_base as application,"
                    " count(distinct user_email) as users, round(sum(runtime_hours)::numeric, 2) as hours"
                    " from department_sessions where $__timeFilter(session_start)"
                    " and department in (${department:sqlstring}) group by 1, 2 order by hours desc limit 50",
                ),
            ],
            variables=[department_variable],
        ),
        "applications": dashboard(
            "jhm-applications",
            "JupyterHub: applications",
            "Images and versions in use.",
            [
                panel(
                    "Users per image (hourly)",
                    "select bucket as time, container_base as metric,"
                    f" count(distinct user_email) as users {hourly_in_range} group by 1, 2 order by 1",
                ),
                panel(
                    "Pods per image version (hourly)",
                    "select bucket as time,"
                    " container_base || ':' || container_version as metric,"
                    f" count(distinct (cluster, namespace, pod_name)) as pods {hourly_in_range}"
                    " group by 1, 2 order by 1",
                ),
                table(
                    "Images and versions",
                    "select container_base as image, container_version as version,"
                    " count(distinct user_email) as users, count(*) as sessions,"
                    f" round(sum(runtime_hours)::numeric, 2) as hours {sessions_in_range}"
                    " group by 1, 2 order by hours desc",
                    width=24,
                ),
            ],
        ),
        "nodes": dashboard(
            "jhm-nodes",
            "JupyterHub: nodes",
            "GPU against CPU use per node (the marts' node rule).",
            [
                panel(
                    "Pods on GPU and CPU nodes (hourly)",
                    "select h.bucket as time, n.node_type as metric,"
                    " count(distinct (h.cluster, h.namespace, h.pod_name)) as pods from hourly_pod_usage as h"
                    " join nodes as n on n.node_name = h.node_name and n.cluster is not distinct from h.cluster"
                    f" where $__timeFilter(h.bucket) and {in_scope('h')} group by 1, 2 order by 1",
                ),
                panel(
                    "GPU device hours per day",
                    "select $__timeGroupAlias(day::timestamptz, '1d'),"
                    f" sum(gpu_device_hours) as gpu_device_hours {days_in_range} group by 1 order by 1",
                    kind="barchart",
                    unit=HOURS,
                ),
                table(
                    "Hours per node",
                    "select n.node_key as node, n.node_type,"
                    " count(distinct s.user_email) as users, round(sum(s.runtime_hours)::numeric, 2) as hours"
                    " from user_sessions as s"
                    " join nodes as n on n.node_name = s.node_name and n.cluster is not distinct from s.cluster"
                    f" where $__timeFilter(s.session_start) and {in_scope('s')} group by 1, 2 order by hours desc",
                ),
                panel(
                    "Pods per node (hourly)",
                    "select bucket as time, node_name as metric,"
                    f" count(distinct (cluster, namespace, pod_name)) as pods {hourly_in_range}"
                    " group by 1, 2 order by 1",
                ),
            ],
        ),
    }


def relations_read(board: dict) -> list[str]:
    """The dbt references of every relation a dashboard's panels and variables read (FROM and JOIN)."""
    models, sources = dbt_references()
    queries = [item["targets"][0]["rawSql"] for item in board["panels"]]
    queries += [variable["query"] for variable in board["templating"]["list"]]
    found = set()
    for query in queries:
        for schema, name in RELATION.findall(query):
            in_raw = schema in (RAW_SCHEMA, "${raw_schema}") or (not schema and name not in models)
            reference = (sources if in_raw else models).get(name)
            if reference:
                found.add(reference)
    return sorted(found)


def exposures_yaml(boards: dict[str, dict]) -> str:
    """dbt exposures for the dashboards: what each one reads, taken from its own SQL."""
    lines = [
        "# Generated by grafana/build_dashboards.py from the dashboards' SQL: do not edit.",
        "version: 2",
        "",
        "exposures:",
    ]
    for name, board in boards.items():
        lines += [
            f"  - name: grafana_{name.replace('-', '_')}",
            f"    label: {json.dumps('Grafana: ' + board['title'].split(': ', 1)[-1])}",
            "    type: dashboard",
            "    maturity: high",
            f"    description: {json.dumps(board['description'])}",
            "    owner:",
            "      name: Research computing",
            "    depends_on:",
            *[f"      - {reference}" for reference in relations_read(board)],
            "",
        ]
    return "\n".join(lines)


def rendered() -> dict[str, str]:
    return {f"{name}.json": json.dumps(board, indent=2) + "\n" for name, board in all_dashboards().items()}


def main() -> None:
    DASHBOARDS.mkdir(exist_ok=True)
    for name, text in rendered().items():
        (DASHBOARDS / name).write_text(text)
    stale = {path.name for path in DASHBOARDS.glob("*.json")} - set(rendered())
    for name in stale:
        (DASHBOARDS / name).unlink()
    EXPOSURES.write_text(exposures_yaml(all_dashboards()))
    print(f"wrote {len(rendered())} dashboards to {DASHBOARDS}", file=sys.stderr)


if __name__ == "__main__":
    main()

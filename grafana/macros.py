"""Grafana's PostgreSQL macros and variable formats, applied as Grafana applies them: the panel tests and the bench
run each panel's SQL as Grafana would send it."""

from __future__ import annotations

import re
from datetime import datetime

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(interval: str) -> int:
    match = re.fullmatch(r"'?(\d+)([smhd])'?", interval.strip())
    if not match:
        raise ValueError(f"unsupported interval {interval!r}")
    return int(match.group(1)) * UNITS[match.group(2)]


def sqlstring(value: str | list[str]) -> str:
    """Grafana's `${var:sqlstring}`: single quotes doubled, each value quoted; several joined by commas."""
    values = [value] if isinstance(value, str) else value
    return ",".join("'" + item.replace("'", "''") + "'" for item in values)


def expand(
    sql: str,
    *,
    start: datetime,
    end: datetime,
    interval: str = "1h",
    variables: dict[str, str | list[str]] | None = None,
) -> str:
    def literal(moment: datetime) -> str:
        return "'" + moment.strftime("%Y-%m-%dT%H:%M:%SZ") + "'"

    for name, value in {"analytics_schema": "analytics", "raw_schema": "raw", **(variables or {})}.items():
        sql = sql.replace(f"${{{name}:sqlstring}}", sqlstring(value))
        if isinstance(value, str):  # constants (the schema variables) are interpolated as they are
            sql = sql.replace(f"${{{name}}}", value)
    sql = sql.replace("$__interval", interval)
    sql = re.sub(
        r"\$__timeFilter\(([^)]+)\)", lambda m: f"{m.group(1)} BETWEEN {literal(start)} AND {literal(end)}", sql
    )
    sql = sql.replace("$__timeFrom()", literal(start)).replace("$__timeTo()", literal(end))

    def group(match: re.Match, alias: bool) -> str:
        column, step = (part.strip() for part in match.group(1).rsplit(",", 1))
        seconds = _seconds(step)
        text = f"floor(extract(epoch from {column})/{seconds})*{seconds}"
        return text + (' AS "time"' if alias else "")

    sql = re.sub(r"\$__timeGroupAlias\(([^()]+)\)", lambda m: group(m, True), sql)
    sql = re.sub(r"\$__timeGroup\(([^()]+)\)", lambda m: group(m, False), sql)
    if "$" in re.sub(r"\$\d", "", sql):
        raise ValueError(f"unexpanded macro or variable left in: {sql}")
    return sql


def variable_values(conn, board: dict, *, start: datetime, end: datetime, known: dict | None = None) -> dict:
    """What each variable of a dashboard offers, chosen as a user would: every value of a multi-value variable
    ("All"), the first of a single one; constants as they are. `conn` is a psycopg connection."""
    values: dict[str, str | list[str]] = dict(known or {})
    for variable in board["templating"]["list"]:
        if variable["type"] == "constant":
            values.setdefault(variable["name"], variable["query"])
        elif variable["type"] == "query" and variable["name"] not in values:
            rows = [row[0] for row in conn.execute(expand(variable["query"], start=start, end=end, variables=values))]
            values[variable["name"]] = rows if variable.get("multi") else (rows[0] if rows else "")
    return values

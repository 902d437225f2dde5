"""Grafana's PostgreSQL macros and variable formats, applied as Grafana applies them, for panel tests."""

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

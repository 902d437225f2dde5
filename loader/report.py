"""`jupyterhub-metrics report`: one self-contained HTML file a department head opens, for a month or an academic term.

Every figure is read from the marts (department_days for any period's department figures, user_sessions and
department_sessions for start-up times and images, failed_starts, rules_in_force) and carries its exact value in a
`data-value` attribute beside the rounded text, so a test (or a reader's script) can check the page against the
marts. The page has no script and makes no request: styles inline, charts as inline SVG (loader/charts.py), text in
the viewer's own sans-serif. "How these are counted" is the dbt docs blocks in force, with the rules' values."""

from __future__ import annotations

import calendar
import html
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from loader import charts
from loader.config import Settings
from loader.db import connect
from loader.errors import ConfigurationError, LoaderError
from loader.export import GENERALISED, generalise

HUB = "Whole hub"
# The docs blocks the report explains, in the order it explains them.
EXPLAINED_RULES = (
    "session_rule",
    "node_rule",
    "calendar_split",
    "activity_rule",
    "idle_rule",
    "gpu_rule",
    "efficiency_rule",
    "cost_rule",
    "startup_rule",
    "fellowships_rule",
    "term_rule",
    "storage_rule",
    "allocation_rule",
)
TOP_IMAGES = 5


@dataclass(frozen=True)
class Figure:
    name: str
    label: str
    kind: str  # count, hours, share, seconds, money


# The figures of every scope (the hub, each department), in the order the report shows them: declared once, read by
# the queries' column names, the tables and the tests.
FIGURES = (
    Figure("users", "Users", "count"),
    Figure("sessions", "Sessions started", "count"),
    Figure("total_hours", "Hours held", "hours"),
    Figure("active_hours", "Hours active (the hub saw activity)", "hours"),
    Figure("gpu_hours", "GPU hours", "hours"),
    Figure("cpu_hours", "CPU hours", "hours"),
    Figure("idle_gpu_hours", "Idle GPU hours", "hours"),
    Figure("idle_gpu_hours_measured_on_gpu", "of which measured on the GPU", "hours"),
    Figure("idle_gpu_hours_from_cpu_proxy", "of which by the CPU proxy", "hours"),
    Figure("cpu_efficiency", "CPU efficiency (used / requested)", "share"),
    Figure("cost", "Cost", "money"),
    Figure("storage_gb_months", "Storage kept (GB-months)", "gb_months"),
    Figure("storage_cost", "Storage cost", "money"),
    Figure("p50_startup_seconds", "Start-up time, median", "seconds"),
    Figure("p95_startup_seconds", "Start-up time, 95th percentile", "seconds"),
    Figure("failed_starts", "Failed starts", "count"),
)
TREND_FIGURES = ("users", "total_hours", "gpu_hours")


@dataclass(frozen=True)
class Period:
    kind: str  # month or term
    name: str
    first_day: date
    last_day: date

    @property
    def label(self) -> str:
        return self.name

    @property
    def span(self) -> str:
        return f"{self.first_day.isoformat()} to {self.last_day.isoformat()} (UTC days, both included)"


def month_period(text: str) -> Period:
    """`--month 2026-10`."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
        raise ConfigurationError(f"--month {text!r} is not a month; give it as YYYY-MM, e.g. 2026-10")
    year, month = int(match.group(1)), int(match.group(2))
    first = date(year, month, 1)
    return Period(
        "month", f"{calendar.month_name[month]} {year}", first, first.replace(day=calendar.monthrange(year, month)[1])
    )


def previous_month(period: Period) -> Period:
    last = period.first_day - timedelta(days=1)
    return month_period(f"{last.year}-{last.month:02d}")


def terms(conn: psycopg.Connection, schema: str) -> list[Period]:
    """The academic terms of the seed, in order."""
    rows = conn.execute(
        sql.SQL("select term, starts_on, ends_on from {}.int_terms order by starts_on, term").format(
            sql.Identifier(schema)
        )
    ).fetchall()
    return [Period("term", name, first, last) for name, first, last in rows]


@dataclass
class Scope:
    """The figures of one scope (the hub or a department) in one period, and what the report shows beside them."""

    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    previous: dict[str, Any] = field(default_factory=dict)
    currency: str | None = None
    uncosted_hours: float | None = None
    gpu_models: list[tuple[str, float, float | None]] = field(default_factory=list)
    images: list[tuple[str, int, float]] = field(default_factory=list)
    failed_reasons: list[tuple[str, int]] = field(default_factory=list)
    # (allocation, grantee, resource, amount, used, percent used, status, projected exhaustion)
    allocations: list[tuple] = field(default_factory=list)
    days: dict[date, tuple[float, float | None]] = field(default_factory=dict)


def _scope_column(kept: Sequence[str] | None) -> sql.Composed:
    """The department a row reports under: itself, or GENERALISED where --pseudonymize merged it."""
    if kept is None:
        return sql.Composed([sql.SQL("department")])
    return sql.SQL("case when department = any({}) then department else {} end").format(
        sql.Literal(list(kept)), sql.Literal(GENERALISED)
    )


def _rows(conn: psycopg.Connection, query: sql.Composed, params: Mapping[str, Any]) -> list[tuple]:
    try:
        return conn.execute(query, params).fetchall()
    except psycopg.errors.UndefinedTable:
        raise LoaderError("the marts are not built; run `jupyterhub-metrics build` first") from None


def _per_scope(
    conn: psycopg.Connection,
    schema: sql.Identifier,
    period: Period,
    kept: Sequence[str] | None,
    *,
    select: str,
    source: str,
    by: str = "",
) -> list[tuple[str, list[Any]]]:
    """(scope, values) rows of `select` over `source` (whose `{schema}` and `%(first)s`/`%(last)s` are filled in),
    for each department (or Other) and for the whole hub, optionally per `by` as well; in the query's order."""
    # Two aggregates rather than GROUPING SETS, which Citus cannot run over distributed tables (spec 3.2).
    query = sql.SQL(
        f"select {{scope}}, false, {select} from {source} group by {{scope}}{', ' + by if by else ''}"
        f" union all select null, true, {select} from {source}{' group by ' + by if by else ''}"
    ).format(scope=_scope_column(kept), schema=schema)
    rows = _rows(conn, query, {"first": period.first_day, "last": period.last_day})
    return [(HUB if is_hub else scope, values) for scope, is_hub, *values in rows]


DAYS_OF_PERIOD = "{schema}.department_days where day between %(first)s and %(last)s"
STARTED_IN_PERIOD = "(session_start at time zone 'UTC')::date between %(first)s and %(last)s"
# The figures that add up from department_days, as department_usage and term_usage add them.
DAY_FIGURES = {
    "users": "count(distinct user_email)",
    "sessions": f"count(distinct session_id) filter (where {STARTED_IN_PERIOD})",
    "total_hours": "sum(hours)",
    "active_hours": "sum(active_hours)",
    "gpu_hours": "sum(gpu_hours)",
    "cpu_hours": "sum(cpu_hours)",
    "idle_gpu_hours": "sum(idle_gpu_hours)",
    # As department_gpu_usage counts them: 0 where the other signal (or none) measured every idle hour.
    "idle_gpu_hours_measured_on_gpu": "case when sum(idle_gpu_hours) is not null"
    " then coalesce(sum(idle_gpu_hours) filter (where idle_signal = 'gpu'), 0) end",
    "idle_gpu_hours_from_cpu_proxy": "case when sum(idle_gpu_hours) is not null"
    " then coalesce(sum(idle_gpu_hours) filter (where idle_signal = 'cpu'), 0) end",
    "cpu_efficiency": "sum(efficiency_cpu_used_core_hours) / nullif(sum(efficiency_cpu_requested_core_hours), 0)",
    "cost": "sum(cost)",
    "currency": "string_agg(distinct currency, ', ')",
    "uncosted_hours": "coalesce(sum(hours) filter (where cost is null), 0)",
}


def _day_figures(conn, schema, period: Period, kept) -> dict[str, dict[str, Any]]:
    rows = _per_scope(conn, schema, period, kept, select=", ".join(DAY_FIGURES.values()), source=DAYS_OF_PERIOD)
    return {scope: dict(zip(DAY_FIGURES, values, strict=True)) for scope, values in rows}


# Storage kept in the period's days (storage_days: the department at day end), as department_storage_usage adds it.
STORAGE_FIGURES = {"storage_gb_months": "sum(gb_months)", "storage_cost": "sum(storage_cost)"}


def _storage_figures(conn, schema, period: Period, kept) -> dict[str, dict[str, Any]]:
    rows = _per_scope(
        conn,
        schema,
        period,
        kept,
        select=", ".join(STORAGE_FIGURES.values()),
        source="{schema}.storage_days where storage_day between %(first)s and %(last)s",
    )
    return {scope: dict(zip(STORAGE_FIGURES, values, strict=True)) for scope, values in rows}


def _allocations(conn, schema, period: Period, kept) -> dict[str, list[tuple]]:
    """The allocations whose days overlap the period, as they stood on its last day (or today, or their end): every
    one under the whole hub, a department's under that department too."""
    rows = _rows(
        conn,
        sql.SQL(
            "select allocation_name, grantee_kind || ' ' || grantee, grantee_kind, grantee, resource, amount, used,"
            " percent_used, status, projected_exhaustion_on from {schema}.allocation_days"
            " where starts_on <= %(last)s and ends_on >= %(first)s"
            " and day = least(ends_on, %(last)s::date, (now() at time zone 'UTC')::date)"
            " order by allocation_name"
        ).format(schema=schema),
        {"first": period.first_day, "last": period.last_day},
    )
    result: dict[str, list[tuple]] = defaultdict(list)
    for name, grantee, kind, department, *figures in rows:
        entry = (name, grantee, *figures)
        result[HUB].append(entry)
        if kind == "department" and (kept is None or department in kept):
            result[department].append(entry)
    return result


def _startup(conn, schema, period: Period, kept) -> dict[str, tuple[float, float]]:
    rows = _per_scope(
        conn,
        schema,
        period,
        kept,
        select="percentile_cont(0.5) within group (order by startup_seconds),"
        " percentile_cont(0.95) within group (order by startup_seconds)",
        source="{schema}.user_sessions inner join {schema}.department_sessions using (session_id, session_start)"
        f" where {STARTED_IN_PERIOD} and startup_seconds is not null",
    )
    return {scope: (p50, p95) for scope, (p50, p95) in rows}


def _ranked(
    conn, schema, period: Period, kept, *, select: str, source: str, by: str, rank: int, limit: int | None = None
) -> dict[str, list[tuple]]:
    """Per scope, the (label, value, ...) rows of `select` per `by`, the largest value at position `rank` first."""
    rows = sorted(
        _per_scope(conn, schema, period, kept, select=select, source=source, by=by),
        key=lambda row: (-(row[1][rank] or 0), row[1][0] or ""),
    )
    result: dict[str, list[tuple]] = defaultdict(list)
    for scope, values in rows:
        if limit is None or len(result[scope]) < limit:
            result[scope].append((values[0] or "unknown", *values[1:]))
    return result


# Failed starts count under the user's department now (a failed start has no session to attribute).
FAILED_IN_PERIOD = (
    "(select coalesce(users.department, 'Unknown') as department, failed.reason"
    " from {schema}.failed_starts as failed left join {schema}.users on users.email = failed.user_email"
    " where (failed.first_seen_pending at time zone 'UTC')::date between %(first)s and %(last)s) as starts"
)


def _breakdowns(conn, schema, period: Period, kept) -> dict[str, dict[str, list[tuple]]]:
    """What each scope's tables list (the Scope attribute each fills): GPU hours per model, the top images of the
    sessions started in the period, failed starts per reason."""
    return {
        "gpu_models": _ranked(conn, schema, period, kept, select="gpu_model_label, sum(gpu_hours), sum(idle_gpu_hours)",
                              source=DAYS_OF_PERIOD + " and gpu_hours > 0", by="gpu_model_label", rank=1),
        "images": _ranked(conn, schema, period, kept,
                          select="container_base, count(distinct user_email), sum(runtime_hours)",
                          source=f"{{schema}}.department_sessions where {STARTED_IN_PERIOD}", by="container_base",
                          rank=2, limit=TOP_IMAGES),
        "failed_reasons": _ranked(conn, schema, period, kept, select="reason, count(*)", source=FAILED_IN_PERIOD,
                                  by="reason", rank=1),
    }  # fmt: skip


def _days(conn, schema, period: Period, kept) -> dict[str, dict[date, tuple[float, float | None]]]:
    rows = _per_scope(
        conn, schema, period, kept, select="day, sum(hours), sum(active_hours)", source=DAYS_OF_PERIOD, by="day"
    )
    result: dict[str, dict] = defaultdict(dict)
    for scope, (day, hours, active) in rows:
        result[scope][day] = (hours, active)
    return result


def _kept_departments(conn, schema, period: Period, min_users: int) -> list[str]:
    """With --pseudonymize: the departments with at least `min_users` users in the period (the rest report together
    as Other, itself kept at `min_users` or more as the exports' generalisation does)."""
    pairs = _rows(
        conn,
        sql.SQL(
            "select distinct user_email, department from {}.department_days where day between %(first)s and %(last)s"
        ).format(schema),
        {"first": period.first_day, "last": period.last_day},
    )
    departments = [department for _, department in pairs]
    mapped = generalise(departments, min_users)
    return sorted({department for department, shown in zip(departments, mapped, strict=True) if shown != GENERALISED})


def _docs_blocks(settings: Settings) -> dict[str, str]:
    text = (settings.dbt_project_dir / "models" / "docs.md").read_text(encoding="utf-8")
    return {
        match.group(1): match.group(2).strip()
        for match in re.finditer(r"\{%\s*docs\s+(\w+)\s*%\}(.*?)\{%\s*enddocs\s*%\}", text, re.S)
    }


@dataclass
class Report:
    period: Period
    previous: Period | None
    scopes: dict[str, Scope]
    rules: list[tuple[str, str]]
    explanations: dict[str, str]
    generated_at: datetime
    pseudonymized: bool
    min_users: int
    department: str | None
    # The first and last UTC day with any usage: a period partly outside them is marked, and a change against a
    # previous period the data does not wholly cover is not computed.
    data_since: date | None = None
    data_until: date | None = None

    def covered(self, period: Period) -> str:
        """The period's name, with the part the data covers where that is not all of it."""
        if self.data_since is None or self.data_until is None:
            return period.label
        first, last = max(period.first_day, self.data_since), min(period.last_day, self.data_until)
        if (first, last) == (period.first_day, period.last_day) or first > last:
            return period.label
        return f"{period.label} ({first.isoformat()} to {last.isoformat()} only)"

    @property
    def comparable(self) -> bool:
        return self.previous is not None and (self.data_since is None or self.previous.first_day >= self.data_since)


def gather(
    settings: Settings,
    *,
    month: str | None = None,
    term: str | None = None,
    department: str | None = None,
    pseudonymize: bool = False,
    min_users: int = 5,
) -> Report:
    """Everything the report shows, read from the marts."""
    if (month is None) == (term is None):
        raise ConfigurationError("give exactly one of --month YYYY-MM or --term NAME")
    schema = sql.Identifier(settings.analytics_schema)
    with connect(settings.database) as conn:
        try:
            known_terms = terms(conn, settings.analytics_schema)
        except psycopg.errors.UndefinedTable:
            raise LoaderError("the marts are not built; run `jupyterhub-metrics build` first") from None
        if month is not None:
            period = month_period(month)
            previous: Period | None = previous_month(period)
        else:
            chosen = [candidate for candidate in known_terms if candidate.name == term]
            if not chosen:
                names = ", ".join(candidate.name for candidate in known_terms) or "none"
                raise ConfigurationError(
                    f"no term {term!r} in the seed terms (known: {names}); add it to seeds/terms.csv"
                )
            period = chosen[0]
            earlier = [candidate for candidate in known_terms if candidate.first_day < period.first_day]
            previous = earlier[-1] if earlier else None
        kept = _kept_departments(conn, schema, period, min_users) if pseudonymize else None
        figures = _day_figures(conn, schema, period, kept)
        storage = _storage_figures(conn, schema, period, kept)
        allocations = _allocations(conn, schema, period, kept)
        if department is not None and department not in figures:
            shown = ", ".join(sorted(name for name in figures if name != HUB)) or "none"
            raise ConfigurationError(f"no department {department!r} in {period.label} (departments: {shown})")
        earlier_figures = _day_figures(conn, schema, previous, kept) if previous else {}
        startup = _startup(conn, schema, period, kept)
        breakdowns = _breakdowns(conn, schema, period, kept)
        days = _days(conn, schema, period, kept)
        coverage = _rows(conn, sql.SQL("select min(day), max(day) from {}.department_days").format(schema), {})
        rules = [(rule, value) for rule, value in _rows(
            conn, sql.SQL("select rule, value from {}.rules_in_force order by rule").format(schema), {}
        )]  # fmt: skip
    scopes: dict[str, Scope] = {}
    for name in [HUB] + sorted(name for name in figures if name != HUB):
        values = {**figures.get(name, {}), **storage.get(name, {})}
        scope = Scope(name, allocations=allocations.get(name, []))
        for figure in FIGURES:
            scope.figures[figure.name] = values.get(figure.name)
        scope.figures["p50_startup_seconds"], scope.figures["p95_startup_seconds"] = startup.get(name, (None, None))
        for attribute, entries in breakdowns.items():
            setattr(scope, attribute, entries.get(name, []))
        scope.figures["failed_starts"] = sum(count for _, count in scope.failed_reasons)
        scope.currency = values.get("currency")
        scope.uncosted_hours = values.get("uncosted_hours")
        scope.previous = {key: earlier_figures.get(name, {}).get(key) for key in TREND_FIGURES} if previous else {}
        scope.days = days.get(name, {})
        scopes[name] = scope
    if department is not None:
        scopes = {name: scope for name, scope in scopes.items() if name in (HUB, department)}
    return Report(
        period=period,
        previous=previous,
        scopes=scopes,
        rules=rules,
        explanations=_docs_blocks(settings),
        generated_at=datetime.now(UTC).replace(microsecond=0),
        pseudonymized=pseudonymize,
        min_users=min_users,
        department=department,
        data_since=coverage[0][0],
        data_until=coverage[0][1],
    )


# Rendering.


def _number(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}"


def shown(figure: Figure, value: Any, currency: str | None = None) -> str:
    """What a reader sees for a figure's value."""
    if value is None:
        return {"money": "no rates", "share": "not measured"}.get(figure.kind, "—")
    number = float(value)
    if figure.kind == "count":
        return _number(number, 0)
    if figure.kind == "hours":
        return f"{_number(number, 1)} h"
    if figure.kind == "share":
        return f"{number * 100:.1f} %"
    if figure.kind == "seconds":
        return f"{number:,.0f} s"
    if figure.kind == "gb_months":
        return f"{_number(number, 1)} GB-months"
    return f"{_number(number, 2)} {currency or ''}".strip()


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _exact(value: Any) -> str:
    return "" if value is None else repr(float(value)) if not isinstance(value, int) else str(value)


def _cell(scope: str, name: str, value: Any, text: str) -> str:
    return (
        f'<td class="figure" data-figure="{html.escape(scope)}|{html.escape(name)}" '
        f'data-value="{_exact(value)}">{html.escape(text)}</td>'
    )


def _change(now: Any, before: Any) -> str:
    if now is None or before in (None, 0):
        return "—"
    return f"{(float(now) - float(before)) / float(before) * 100:+.0f} %"


def _figures_table(report: Report, scope: Scope) -> str:
    previous_label = html.escape(report.covered(report.previous)) if report.previous else "previous period"
    rows = []
    for figure in FIGURES:
        value = scope.figures.get(figure.name)
        text = shown(figure, value, scope.currency)
        if figure.name == "cost" and value is not None and scope.uncosted_hours:
            text += f" ({scope.uncosted_hours:,.1f} h without a rate)"
        if figure.name == "active_hours" and value is None:
            text = "the hub was not read"
        cells = [f"<th>{html.escape(figure.label)}</th>", _cell(scope.name, figure.name, value, text)]
        if figure.name in TREND_FIGURES and report.previous:
            before = scope.previous.get(figure.name)
            cells.append(_cell(scope.name, f"previous_{figure.name}", before, shown(figure, before)))
            cells.append(f"<td>{_change(value, before) if report.comparable else '—'}</td>")
        else:
            cells.append("<td></td><td></td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = (
        f"<tr><th></th><th>{html.escape(report.covered(report.period))}</th><th>{previous_label}</th>"
        "<th>change</th></tr>"
    )
    return f'<table class="figures"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _list_table(scope: str, caption: str, header: Sequence[str], rows: Iterable[Sequence[tuple[str, Any, str]]]) -> str:
    """A small table whose cells are (figure name, exact value, text); an empty name marks a label cell."""
    body = []
    for row in rows:
        cells = [
            _cell(scope, name, value, text) if name else f"<td>{html.escape(text)}</td>" for name, value, text in row
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        return f"<p class='none'>{html.escape(caption)}: none in this period.</p>"
    head = "".join(f"<th>{html.escape(title)}</th>" for title in header)
    return (
        f"<table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


# The tables under each scope's figures: caption, header, the figures of each column (name, kind), and the Scope
# attribute holding the (label, value, ...) entries.
BREAKDOWNS = (
    ("GPU hours by model", ["GPU model", "GPU hours", "idle GPU hours"],
     [("gpu_hours", "hours"), ("idle_gpu_hours", "hours")], "gpu_models"),
    ("Top images (of the sessions started in the period)", ["image", "users", "hours held"],
     [("image_users", "count"), ("image_hours", "hours")], "images"),
    ("Failed starts by reason", ["why the pod waited", "failed starts"], [("failed_starts", "count")],
     "failed_reasons"),
)  # fmt: skip


def _breakdown(
    scope: str, caption: str, header: Sequence[str], columns: Sequence[tuple[str, str]], entries: Iterable[tuple]
) -> str:
    """A table of (label, value, ...) entries; each value a figure named `<column>:<label>` of its column's kind."""
    rows = [
        [("", None, label)]
        + [
            (f"{name}:{label}", value, shown(Figure(name, "", kind), value))
            for (name, kind), value in zip(columns, values, strict=True)
        ]
        for label, *values in entries
    ]
    return _list_table(scope, caption, header, rows)


def _scope_section(report: Report, scope: Scope, chart_prefix: str) -> str:
    parts = [_figures_table(report, scope)]
    if scope.days:
        days = sorted(scope.days)
        parts.append(
            "<figure>"
            + charts.daily_hours(
                f"{chart_prefix}-daily",
                days,
                [float(scope.days[day][0] or 0) for day in days],
                [_float_or_none(scope.days[day][1]) for day in days],
            )
            + "<figcaption>Hours held per UTC day, and the hours in which the hub saw activity.</figcaption></figure>"
        )
    for caption, header, columns, entries in BREAKDOWNS:
        parts.append(_breakdown(scope.name, caption, header, columns, getattr(scope, entries)))
    parts.append(_allocations_table(scope))
    return "".join(parts)


UNITS = {"gpu_hours": "GPU hours", "cpu_core_hours": "core hours", "storage_gb_months": "GB-months"}


def _allocations_table(scope: Scope) -> str:
    """Each allocation's amount, use and standing on the period's last day (allocation rule)."""
    amount = Figure("allocation_amount", "", "count")
    rows = [
        [
            ("", None, name),
            ("", None, f"{grantee}, {UNITS.get(resource, resource)}"),
            (f"allocation_amount:{name}", granted, shown(amount, granted)),
            (f"allocation_used:{name}", used, _number(float(used), 1)),
            (f"allocation_percent_used:{name}", percent, f"{float(percent):.1f} %"),
            ("", None, status),
            ("", None, projected.isoformat() if projected else "—"),
        ]
        for name, grantee, resource, granted, used, percent, status, projected in scope.allocations
    ]
    return _list_table(
        scope.name,
        "Allocations (as they stood at the end of the period)",
        ["allocation", "granted to", "amount", "used", "used %", "status", "runs out at its pace"],
        rows,
    )


def _rule_in_force(name: str, rules: Mapping[str, str]) -> str:
    return f"<code>{name}</code> (now <strong>{html.escape(rules.get(name, '?'))}</strong>)"


def _explanation(text: str, rules: Mapping[str, str]) -> str:
    """A docs block as HTML: paragraphs, **bold**, `code`, and `var('x')` shown with the value in force."""
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"`var\('(\w+)'\)`", lambda m: _rule_in_force(m.group(1), rules), escaped)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return "".join(f"<p>{' '.join(paragraph.split())}</p>" for paragraph in escaped.split("\n\n"))


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1d232a; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { border-bottom: 2px solid #3b6ea5; padding-bottom: 0.2rem; }
.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8rem 0; min-width: 24rem; }
th, td { text-align: left; padding: 0.25rem 0.7rem; border-bottom: 1px solid #e3e6ea; vertical-align: top; }
td.figure { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
caption { text-align: left; font-weight: 600; padding: 0.3rem 0; }
figure { margin: 1rem 0; } figcaption { color: #555; font-size: 0.85rem; }
svg.chart { max-width: 100%; height: auto; }
.none { color: #777; } .rules td:first-child { font-family: monospace; }
section { break-inside: auto; } table, figure { break-inside: avoid; }
@media print { body { margin: 0; max-width: none; } h2 { break-before: page; } h2.first { break-before: avoid; } }
"""


def render(report: Report) -> str:
    hub = report.scopes[HUB]
    departments = [scope for name, scope in report.scopes.items() if name != HUB]
    period = report.period
    title = f"JupyterHub usage: {period.label}"
    meta = [period.span, f"generated {report.generated_at.isoformat()}"]
    if report.previous:
        meta.append(f"compared with {report.covered(report.previous)}")
        if not report.comparable:
            meta.append(f"no change is shown: the data begins on {report.data_since}")
    if report.pseudonymized:
        meta.append(f"departments with fewer than {report.min_users} users are reported together as {GENERALISED}")
    sections = [
        f"<header><h1>{html.escape(title)}</h1><p class='meta'>{html.escape(' · '.join(meta))}</p></header>",
        f"<section id='hub'><h2 class='first'>{HUB}</h2>{_scope_section(report, hub, 'hub')}",
    ]
    every_department = [scope for name, scope in _all_departments(report)]
    if every_department:
        labels = [scope.name for scope in every_department]
        sections.append(
            "<figure>"
            + charts.hours_by_label(
                "hub-departments",
                labels,
                [
                    ("GPU hours", charts.GPU, [float(scope.figures["gpu_hours"] or 0) for scope in every_department]),
                    ("CPU hours", charts.CPU, [float(scope.figures["cpu_hours"] or 0) for scope in every_department]),
                ],
            )
            + "<figcaption>Hours held per department (as it was when each session started).</figcaption></figure>"
        )
    if hub.gpu_models:
        sections.append(
            "<figure>"
            + charts.hours_by_label(
                "hub-gpu-models",
                [model for model, _, _ in hub.gpu_models],
                [
                    (
                        "GPU hours used",
                        charts.GPU,
                        [float(held or 0) - float(idle or 0) for _, held, idle in hub.gpu_models],
                    ),
                    ("GPU hours idle", charts.IDLE, [float(idle or 0) for _, _, idle in hub.gpu_models]),
                ],  # fmt: skip
            )
            + "<figcaption>GPU hours per model: used and idle (idle rule).</figcaption></figure>"
        )
    sections.append("</section>")
    for number, scope in enumerate(departments, start=1):
        anchor = f"department-{number}"
        sections.append(
            f"<section id='{anchor}' class='department'><h2>{html.escape(scope.name)}</h2>"
            + _scope_section(report, scope, anchor)
            + "</section>"
        )
    rules = {rule: value for rule, value in report.rules}
    explained = "".join(
        _explanation(report.explanations[name], rules) for name in EXPLAINED_RULES if name in report.explanations
    )
    rule_rows = "".join(
        f"<tr><td>{html.escape(rule)}</td><td>{html.escape(value)}</td></tr>" for rule, value in report.rules
    )
    sections.append(
        "<section id='how'><h2>How these are counted</h2>"
        "<p>Departments are those users had when each session started (the directory's history). A session-day"
        " counts in the period its UTC day falls in; sessions are counted in the period they started in. Failed"
        " starts count under the user's department now.</p>"
        f"{explained}<table class='rules'><caption>Rules in force at the last build</caption>{rule_rows}</table>"
        "</section>"
    )
    body = "".join(sections)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def _all_departments(report: Report) -> list[tuple[str, Scope]]:
    return [(name, scope) for name, scope in report.scopes.items() if name != HUB]


def write_report(settings: Settings, out: Path, **options: Any) -> Report:
    """Gathers, renders, and writes beside `out` then renames: a failed report leaves no half file."""
    report = gather(settings, **options)
    text = render(report)
    out = out.resolve()
    temporary = out.with_name(f".{out.name}.partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(out)
    except OSError as error:
        raise LoaderError(f"cannot write {out}: {error.strerror}") from None
    return report

"""Held against used: the hours the hub saw activity on each server, per user, department, hub group (course, lab)
and academic term."""

from grafana.panels import (
    DAYS_IN_RANGE,
    DEPARTMENT_VARIABLE,
    HOURS,
    MONTHS_IN_RANGE,
    SESSIONS_IN_RANGE,
    dashboard,
    panel,
    stat,
    table,
)

# The share of held hours the hub saw activity in, over the rows read where the hub was read (activity rule).
ACTIVE_SHARE = "round((sum(active_hours) / nullif(sum(hours) filter (where active_hours is not null), 0))::numeric, 3)"
TERMS_IN_RANGE = "starts_on <= $__timeTo()::timestamptz::date and ends_on >= $__timeFrom()::timestamptz::date"


def board() -> dict:
    return dashboard(
        "jhm-activity",
        "JupyterHub: activity, groups and terms",
        "Hours held against hours the hub saw activity in; use per hub group (course, lab) and academic term.",
        [
            stat(
                "Active share",
                f"select {ACTIVE_SHARE} as active_share {DAYS_IN_RANGE}",
                "Of the hours held where the hub was read, the share in which it saw activity (activity rule).",
                unit="percentunit",
            ),
            stat(
                "Hours held",
                f"select round(sum(hours)::numeric, 1) as hours {DAYS_IN_RANGE}",
                "Hours of sessions in the time range.",
                unit=HOURS,
            ),
            stat(
                "Hours active",
                f"select round(sum(active_hours)::numeric, 1) as active_hours {DAYS_IN_RANGE}",
                "Hours in which the hub saw activity on the servers.",
                unit=HOURS,
            ),
            panel(
                "Held and active per day",
                "select $__timeGroupAlias(day::timestamptz, '1d'), sum(hours) as held, sum(active_hours) as active"
                f" {DAYS_IN_RANGE} group by 1 order by 1",
                "Hours held and, of them, active, in each UTC day.",
                kind="barchart",
                unit=HOURS,
                width=24,
            ),
            table(
                "Held and active per user",
                "select user_email as user, round(sum(runtime_hours)::numeric, 2) as hours_held,"
                " round(sum(active_hours)::numeric, 2) as hours_active,"
                " round((sum(active_hours) / nullif(sum(runtime_hours) filter (where active_hours is not null), 0))"
                f"::numeric, 3) as active_share {SESSIONS_IN_RANGE} group by 1 order by 2 desc limit 50",
                "Per user: hours held and active in the sessions started in the time range.",
            ),
            table(
                "Held and active per department",
                "select department, round(sum(total_hours)::numeric, 2) as hours_held,"
                f" round(sum(active_hours)::numeric, 2) as hours_active {MONTHS_IN_RANGE} group by 1 order by 2 desc",
                "Per department (as it was when each session started): hours held and active.",
            ),
            table(
                "Per group and month",
                "select month, group_name as group, users, sessions, round(total_hours::numeric, 2) as hours_held,"
                " round(active_hours::numeric, 2) as hours_active, round(gpu_hours::numeric, 2) as gpu_hours"
                " from group_usage where month >= date_trunc('month', $__timeFrom()::timestamptz)::date"
                " and month <= $__timeTo()::timestamptz::date order by month desc, hours_held desc",
                "Per hub group and month: users, sessions, hours held and active (group rule: a user in two groups"
                " counts in both).",
                width=24,
            ),
            table(
                "Per term and group",
                "select term, group_name as group, users, sessions, round(total_hours::numeric, 2) as hours_held,"
                " round(active_hours::numeric, 2) as hours_active from group_term_usage"
                f" where {TERMS_IN_RANGE} order by starts_on desc, hours_held desc",
                "Per academic term overlapping the time range (seed terms) and hub group: a term's days only"
                " (term rule).",
            ),
            table(
                "Per term and department",
                "select term, department, users, round(total_hours::numeric, 2) as hours_held,"
                " round(active_hours::numeric, 2) as hours_active from term_usage"
                f" where {TERMS_IN_RANGE} and department in (${{department:sqlstring}})"
                " order by starts_on desc, hours_held desc",
                "Per academic term overlapping the time range and department (as it was when each session started).",
            ),
        ],
        variables=[DEPARTMENT_VARIABLE],
    )

"""Allocations: what each group, department or user was granted, what is left, the burn-down against an even pace,
and when each runs out at its pace (allocation rule). Grafana alert rules watch the same relation."""

from grafana.panels import dashboard, panel, stat, table


def board() -> dict:
    return dashboard(
        "jhm-allocations",
        "JupyterHub: allocations",
        "GPU hours, core hours and storage granted per group, department or user: used, left, and when each runs out.",
        [
            stat(
                "Allocations warning",
                "select count(*) filter (where status = 'warning') as warning,"
                " count(*) filter (where status = 'exhausted') as exhausted from allocation_status"
                " where period_state = 'current'",
                "Current allocations past their first warning threshold, and those used up.",
            ),
            stat(
                "Running out before their end",
                "select count(*) as running_out from allocation_status"
                " where period_state = 'current' and runs_out_before_end",
                "Current allocations whose projected exhaustion, at the last 14 days' pace, falls before their end.",
            ),
            panel(
                "Burn-down against an even pace",
                "select day::timestamptz as time, allocation_name || ' used' as metric, percent_used as value"
                " from allocation_days where $__timeFilter(day::timestamptz)"
                " union all select day::timestamptz, allocation_name || ' even pace', 100 * even_pace_used / amount"
                " from allocation_days where $__timeFilter(day::timestamptz) order by 1",
                "Percent of each allocation used by each day, beside the percent an even pace would have used.",
                unit="percent",
                width=24,
            ),
            table(
                "Allocations by projected exhaustion",
                "select allocation_name as allocation, grantee_kind || ' ' || grantee as grantee, resource, amount,"
                " round(used::numeric, 1) as used, round(remaining::numeric, 1) as remaining,"
                " round(percent_used::numeric, 1) as percent_used,"
                " round(burn_rate_per_day::numeric, 2) as burn_per_day, projected_exhaustion_on,"
                " runs_out_before_end, status, starts_on, ends_on from allocation_status"
                " where period_state <> 'ended' order by projected_exhaustion_on nulls last, percent_used desc",
                "Every current or upcoming allocation, the soonest to run out first.",
                width=24,
            ),
            table(
                "Ended allocations",
                "select allocation_name as allocation, grantee_kind || ' ' || grantee as grantee, resource, amount,"
                " round(used::numeric, 1) as used, round(percent_used::numeric, 1) as percent_used, status,"
                " starts_on, ends_on from allocation_status where period_state = 'ended'"
                " order by ends_on desc",
                "What past allocations granted and what was used of them.",
                width=24,
            ),
        ],
    )

"""Growth, heaviest users, GPU against CPU."""

from grafana.panels import DAYS_IN_RANGE, HOURS, SESSIONS_IN_RANGE, dashboard, efficiency, in_scope, panel, table


def board() -> dict:
    return dashboard(
        "jhm-users",
        "JupyterHub: users",
        "Growth, heaviest users, GPU against CPU.",
        [
            panel(
                "Users so far",
                "select time, sum(new_users) over (order by time) as users from ("
                " select $__timeGroup(first_seen, '1d') as time, count(*) as new_users from users"
                " where first_seen <= $__timeTo() group by 1) as daily order by 1",
                "Cumulative count of users by the day they were first observed.",
            ),
            panel(
                "GPU and CPU hours per day",
                "select $__timeGroupAlias(day::timestamptz, '1d'),"
                f" sum(gpu_hours) as gpu_hours, sum(cpu_hours) as cpu_hours {DAYS_IN_RANGE}"
                " group by 1 order by 1",
                "Hours on GPU and on CPU in each UTC day (sessions split at midnight).",
                kind="barchart",
                unit=HOURS,
            ),
            table(
                "GPU hours held and idle per user",
                "select user_email as user, round(sum(gpu_hours)::numeric, 2) as gpu_hours_held,"
                " round(sum(idle_gpu_hours)::numeric, 2) as gpu_hours_idle,"
                f" {efficiency('efficiency_cpu_used_core_hours', 'efficiency_cpu_requested_core_hours')}"
                f" as cpu_used_of_requested {SESSIONS_IN_RANGE} and node_type = 'gpu'"
                " group by 1 order by 2 desc limit 25",
                "Per user in the time range: GPU hours held, and of them the hours the notebook was idle (idle"
                " rule), with CPU used over CPU requested.",
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
                "The 25 users with the most session hours in the time range, with their department.",
                width=16,
            ),
            panel(
                "GPU against CPU hours",
                f"select sum(gpu_hours) as gpu_hours, sum(cpu_hours) as cpu_hours {SESSIONS_IN_RANGE}",
                "Session hours in the time range, split into GPU and CPU time.",
                kind="piechart",
                fmt="table",
                width=8,
                unit=HOURS,
            ),
        ],
    )

"""One user's sessions, hours and images."""

from grafana.panels import HOURS, USER, dashboard, in_scope, panel, query_variable, stat, table


def board() -> dict:
    user_variable = query_variable(
        "user", "User", "select email from users where first_seen is not null order by email", multi=False
    )
    in_range = f"where user_email = {USER} and $__timeFilter(session_start) and {in_scope()}"
    return dashboard(
        "jhm-user-detail",
        "JupyterHub: user detail",
        "One user's sessions, hours and images.",
        [
            stat(
                "Hours, all time",
                f"select round(total_hours::numeric, 2) as hours from user_session_stats where user_email = {USER}",
                "The user's session hours over all history.",
                unit=HOURS,
            ),
            stat(
                "GPU hours, all time",
                f"select round(gpu_hours::numeric, 2) as gpu_hours from user_session_stats where user_email = {USER}",
                "The user's GPU session hours over all history.",
                unit=HOURS,
            ),
            stat(
                "Sessions, all time",
                f"select total_sessions as sessions from user_session_stats where user_email = {USER}",
                "The user's sessions over all history.",
            ),
            panel(
                "Hours per day",
                "select $__timeGroupAlias(day::timestamptz, '1d'), sum(gpu_hours) as gpu_hours,"
                f" sum(cpu_hours) as cpu_hours from session_days where user_email = {USER}"
                f" and $__timeFilter(day::timestamptz) and {in_scope()} group by 1 order by 1",
                "The user's GPU and CPU hours in each UTC day (sessions split at midnight).",
                kind="barchart",
                unit=HOURS,
            ),
            panel(
                "Session timeline",
                "select time, pod, state from ("
                " select session_start as time, pod_name || ' on ' || node_name as pod,"
                f" node_type || ': ' || container_base as state from user_sessions {in_range}"
                " union all"
                " select session_end as time, pod_name || ' on ' || node_name as pod, 'not running' as state"
                f" from user_sessions {in_range}) as changes order by time",
                "The user's sessions as a timeline, one row per pod: GPU or CPU and the image.",
                kind="state-timeline",
                fmt="table",
                width=24,
            ),
            panel(
                "Images used",
                f"select container_base as image, sum(runtime_hours) as hours from user_sessions {in_range}"
                " group by 1 order by 2 desc",
                "The user's session hours per image (container_base).",
                kind="piechart",
                fmt="table",
                unit=HOURS,
            ),
            table(
                "Sessions",
                "select session_start, session_end, round(runtime_hours::numeric, 2) as hours,"
                " cluster, namespace, node_name, node_type, container_base, container_version, server_name"
                f" from user_sessions {in_range} order by session_start desc",
                "The user's sessions in the time range, newest first.",
                width=24,
            ),
        ],
        variables=[user_variable],
    )

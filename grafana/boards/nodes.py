"""GPU against CPU use per node (the marts' node rule)."""

from grafana.panels import DAYS_IN_RANGE, HOURLY_IN_RANGE, HOURS, dashboard, in_scope, panel, table


def board() -> dict:
    return dashboard(
        "jhm-nodes",
        "JupyterHub: nodes",
        "GPU against CPU use per node (the marts' node rule).",
        [
            panel(
                "Pods on GPU and CPU (hourly)",
                "select bucket as time, node_type as metric,"
                f" sum(pods) as pods {HOURLY_IN_RANGE} group by 1, 2 order by 1",
                "Pods given GPUs, and given none, in each hour (the node rule where a request is unknown); each pod"
                " counts once per hour.",
            ),
            panel(
                "GPU device hours per day",
                "select $__timeGroupAlias(day::timestamptz, '1d'),"
                f" sum(gpu_device_hours) as gpu_device_hours {DAYS_IN_RANGE} group by 1 order by 1",
                "GPUs requested times hours, in each UTC day (sessions split at midnight).",
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
                "Users and session hours per node in the time range.",
            ),
            panel(
                "Pods per node (hourly)",
                "select bucket as time, node_name as metric,"
                f" sum(pods) as pods {HOURLY_IN_RANGE} group by 1, 2 order by 1",
                "Pods per node in each hour (a pod that moved within the hour counts once, under its first node).",
            ),
        ],
    )

"""What the GPUs did: held against used (dcgm-exporter through Prometheus), idle GPU hours, and the sessions holding
GPUs idle now."""

from grafana.panels import (
    DAYS_IN_RANGE,
    DEPARTMENT_VARIABLE,
    HOURS,
    MONTHS_IN_RANGE,
    SESSIONS_IN_RANGE,
    dashboard,
    efficiency,
    panel,
    stat,
    table,
)

GPU_EFFICIENCY = efficiency("efficiency_gpu_used_device_hours", "efficiency_gpu_held_device_hours")


def board() -> dict:
    return dashboard(
        "jhm-gpus",
        "JupyterHub: GPUs",
        "GPU hours held and used: utilisation from DCGM where Prometheus has it, idle GPU hours, efficiency.",
        [
            stat(
                "GPU efficiency",
                f"select {GPU_EFFICIENCY} as efficiency {DAYS_IN_RANGE}",
                "GPU device-hours used over held in the time range, where the GPU was measured (efficiency rule).",
            ),
            stat(
                "GPU hours held",
                f"select round(sum(gpu_hours)::numeric, 1) as gpu_hours {DAYS_IN_RANGE}",
                "Hours of GPU sessions in the time range.",
                unit=HOURS,
            ),
            stat(
                "GPU hours idle",
                f"select round(sum(idle_gpu_hours)::numeric, 1) as idle_gpu_hours {DAYS_IN_RANGE}",
                "Of the GPU hours held, the hours the GPUs were idle: measured on the GPU where DCGM answered,"
                " else by the CPU proxy (idle rule).",
                unit=HOURS,
            ),
            panel(
                "GPU hours held and idle per day",
                "select $__timeGroupAlias(day::timestamptz, '1d'), sum(gpu_hours) as held,"
                f" sum(idle_gpu_hours) as idle {DAYS_IN_RANGE} group by 1 order by 1",
                "GPU hours held and, of them, idle, in each UTC day (idle time counts in the day it happened).",
                kind="barchart",
                unit=HOURS,
                width=24,
            ),
            table(
                "Per GPU model",
                "select gpu_model_label as model, round(sum(gpu_hours)::numeric, 2) as hours_held,"
                " round(sum(idle_gpu_hours)::numeric, 2) as hours_idle,"
                f" {GPU_EFFICIENCY} as efficiency {DAYS_IN_RANGE} and gpu_hours > 0 group by 1 order by 2 desc",
                "GPU hours held and idle, and GPU efficiency, per model (DCGM's, or the class the node's name says).",
            ),
            table(
                "GPU efficiency per image",
                "select container_base as image, round(sum(gpu_hours)::numeric, 2) as hours_held,"
                f" {GPU_EFFICIENCY} as efficiency {SESSIONS_IN_RANGE} and node_type = 'gpu'"
                " group by 1 order by 2 desc",
                "GPU hours held and GPU efficiency per image in the time range.",
            ),
            table(
                "GPU efficiency per user",
                "select user_email as user, round(sum(gpu_hours)::numeric, 2) as hours_held,"
                " round(sum(idle_gpu_hours)::numeric, 2) as hours_idle,"
                f" {GPU_EFFICIENCY} as efficiency {SESSIONS_IN_RANGE} and node_type = 'gpu'"
                " group by 1 order by 2 desc limit 50",
                "Per user: GPU hours held and idle, and GPU efficiency, in the time range.",
                width=24,
            ),
            panel(
                "Idle GPU hours per department and model",
                "select department || ' / ' || gpu_model as department_and_model, sum(gpu_hours) as held,"
                " sum(idle_gpu_hours) as idle"
                f" {MONTHS_IN_RANGE.replace('department_usage', 'department_gpu_usage')}"
                " group by 1 order by 3 desc limit 30",
                "Per department (as it was when each session started) and GPU model: GPU hours held and idle.",
                kind="barchart",
                fmt="table",
                unit=HOURS,
                width=24,
            ),
            table(
                "Held but idle",
                "select user_email as user, pod_name as pod, node_name as node, gpu_model_label as model, gpu_count,"
                " session_start, session_end, round(gpu_hours::numeric, 2) as hours_held,"
                " round(idle_gpu_hours::numeric, 2) as hours_idle,"
                " round(avg_gpu_utilization, 3) as mean_utilisation, idle_signal"
                f" {SESSIONS_IN_RANGE} and node_type = 'gpu' and idle_gpu_hours >= 0.5 * gpu_hours"
                " and gpu_hours > 0 order by session_end desc, idle_gpu_hours desc limit 100",
                "GPU sessions idle for at least half of their hours, newest first: the sessions to ask about,"
                " or to reclaim.",
                width=24,
            ),
        ],
        variables=[DEPARTMENT_VARIABLE],
    )

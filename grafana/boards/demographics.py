"""Use by department (as it was when each session started) and job title."""

from grafana.panels import DEPARTMENT_VARIABLE, HOURS, MONTHS_IN_RANGE, dashboard, panel, table


def board() -> dict:
    return dashboard(
        "jhm-demographics",
        "JupyterHub: demographics",
        "Use by department (as it was when each session started) and job title.",
        [
            panel(
                "Hours by department",
                "select department, sum(gpu_hours) as gpu_hours, sum(cpu_hours) as cpu_hours"
                f" {MONTHS_IN_RANGE} group by 1 order by sum(total_hours) desc",
                "GPU and CPU hours per department, attributed to the department of each month.",
                kind="barchart",
                fmt="table",
                unit=HOURS,
            ),
            panel(
                "GPU hours held and idle per department",
                "select department, sum(gpu_hours) as gpu_hours_held, sum(idle_gpu_hours) as gpu_hours_idle"
                f" {MONTHS_IN_RANGE} group by 1 order by 2 desc",
                "Per department in the time range: GPU hours held and idle.",
                kind="barchart",
                fmt="table",
                unit=HOURS,
            ),
            panel(
                "Cost per department",
                f"select department, round(sum(cost)::numeric, 2) as cost {MONTHS_IN_RANGE}"
                " group by 1 order by 2 desc nulls last",
                "What each department's hours cost at the rates in force (null: no rates).",
                kind="barchart",
                fmt="table",
            ),
            panel(
                "Users per department and month",
                f"select month::timestamptz as time, department as metric, users {MONTHS_IN_RANGE} order by 1, 2",
                "Distinct users per department and month.",
                kind="barchart",
            ),
            table(
                "Job titles",
                "select coalesce(job_title, 'Unknown') as job_title, count(distinct user_email) as users,"
                " round(sum(runtime_hours)::numeric, 2) as hours from department_sessions"
                " where $__timeFilter(session_start) and department in (${department:sqlstring})"
                " group by 1 order by hours desc limit 30",
                "Users and hours per job title (after the Fellowships fix-up).",
            ),
            table(
                "Departments and applications",
                "select department, container_base as application,"
                " count(distinct user_email) as users, round(sum(runtime_hours)::numeric, 2) as hours"
                " from department_sessions where $__timeFilter(session_start)"
                " and department in (${department:sqlstring}) group by 1, 2 order by hours desc limit 50",
                "Users and hours per department and image.",
            ),
        ],
        variables=[DEPARTMENT_VARIABLE],
    )

"""Images and versions in use."""

from grafana.panels import HOURLY_IN_RANGE, SESSIONS_IN_RANGE, dashboard, panel, table


def board() -> dict:
    return dashboard(
        "jhm-applications",
        "JupyterHub: applications",
        "Images and versions in use.",
        [
            panel(
                "Users per image (hourly)",
                "select bucket as time, container_base as metric,"
                f" count(distinct user_email) as users {HOURLY_IN_RANGE} group by 1, 2 order by 1",
                "Distinct users per image in each hour.",
            ),
            panel(
                "Pods per image version (hourly)",
                "select bucket as time, container_base || ':' || container_version as metric,"
                f" sum(pods) as pods {HOURLY_IN_RANGE} group by 1, 2 order by 1",
                "Pods per image and version in each hour (a pod that restarted within the hour counts once, under"
                " its first image).",
            ),
            table(
                "Images and versions",
                "select container_base as image, container_version as version,"
                " count(distinct user_email) as users, count(*) as sessions,"
                f" round(sum(runtime_hours)::numeric, 2) as hours {SESSIONS_IN_RANGE}"
                " group by 1, 2 order by hours desc",
                "Users, sessions and hours per image and version in the time range.",
                width=24,
            ),
        ],
    )

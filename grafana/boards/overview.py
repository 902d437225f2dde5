"""Who is on the hub now and how use changes."""

from grafana.panels import HOURLY_IN_RANGE, SESSION_GAP, SESSIONS_IN_RANGE, dashboard, in_scope, panel, stat


def board() -> dict:
    return dashboard(
        "jhm-overview",
        "JupyterHub: overview",
        "Who is on the hub now and how use changes.",
        [
            stat(
                "Active users now",
                "select count(distinct user_email) as users from user_sessions"
                f" where session_end >= now() - interval '10 minutes' and {in_scope()}",
                "Distinct users with a session observed in the last 10 minutes.",
            ),
            stat(
                "Active users, last 24 hours",
                "select count(distinct user_email) as users from user_sessions"
                f" where session_end >= now() - interval '24 hours' and {in_scope()}",
                "Distinct users with a session that ended in the last 24 hours.",
            ),
            stat(
                "Active users, last 30 days",
                "select count(distinct user_email) as users from user_sessions"
                f" where session_end >= now() - interval '30 days' and {in_scope()}",
                "Distinct users with a session that ended in the last 30 days.",
            ),
            panel(
                "Sessions started",
                f"select $__timeGroupAlias(session_start, $__interval), count(*) as sessions"
                f" {SESSIONS_IN_RANGE} group by 1 order by 1",
                f"Sessions by the time they started (the session rule: {SESSION_GAP} split).",
            ),
            panel(
                "Running pods (hourly)",
                f"select bucket as time, sum(pods) as pods {HOURLY_IN_RANGE} group by 1 order by 1",
                "Pods observed in each hour, each once.",
            ),
            panel(
                "Active users (hourly)",
                f"select bucket as time, count(distinct user_email) as users {HOURLY_IN_RANGE} group by 1 order by 1",
                "Distinct users with a pod observed in each hour.",
                width=24,
            ),
        ],
    )

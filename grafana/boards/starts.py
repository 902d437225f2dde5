"""Starting a server: how long users waited (from the pods' conditions), the starts that failed and why, and the
servers waiting at the latest collection."""

from grafana.panels import SESSIONS_IN_RANGE, dashboard, in_scope, panel, stat, table

SECONDS = "s"
MEASURED = f"{SESSIONS_IN_RANGE} and startup_seconds is not null"
FAILED_IN_RANGE = f"from failed_starts where $__timeFilter(first_seen_pending) and {in_scope()}"


def percentiles(column: str) -> str:
    return (
        f"percentile_cont(0.5) within group (order by {column}) as p50,"
        f" percentile_cont(0.95) within group (order by {column}) as p95"
    )


def board() -> dict:
    return dashboard(
        "jhm-starts",
        "JupyterHub: starting servers",
        "How long users wait for their servers, which starts fail and why, and who is waiting now.",
        [
            stat(
                "Median start-up",
                f"select percentile_cont(0.5) within group (order by startup_seconds) as p50 {MEASURED}",
                "Median seconds from the pod's creation to its readiness, over the sessions started in the time range"
                " (start-up rule).",
                unit=SECONDS,
            ),
            stat(
                "Failed starts",
                f"select count(*) as failed_starts {FAILED_IN_RANGE}",
                "Pods first seen waiting in the time range that never ran (start-up rule; sampled at each collection).",
            ),
            stat(
                "Servers waiting now",
                f"select count(*) as waiting from pending_now where {in_scope()}",
                "Single-user pods pending or failed at the latest collection.",
            ),
            panel(
                "Start-up time per day",
                f"select $__timeGroupAlias(session_start, '1d'), {percentiles('startup_seconds')}"
                f" {MEASURED} group by 1 order by 1",
                "Median and 95th percentile of the seconds users waited for their servers, per UTC day the sessions"
                " started.",
                unit=SECONDS,
                width=24,
            ),
            table(
                "Start-up per image, node type and GPU model",
                "select container_base as image, node_type, coalesce(gpu_model_label, '-') as gpu_model,"
                f" count(*) as starts, {percentiles('startup_seconds')},"
                " percentile_cont(0.5) within group (order by scheduling_seconds) as p50_waiting_for_a_node,"
                " percentile_cont(0.5) within group (order by start_seconds) as p50_starting_on_the_node"
                f" {MEASURED} group by 1, 2, 3 order by p95 desc",
                "Start-up seconds per image, node type and GPU model; the two parts: waiting for a node (scheduling),"
                " and pulling the image, mounting volumes and starting the server on it.",
                width=24,
            ),
            panel(
                "Failed starts per reason",
                f"select reason, count(*) as failed_starts {FAILED_IN_RANGE} group by 1 order by 2 desc",
                "Starts that never ran, by why the pod waited last (ErrImagePull, ImagePullBackOff, Unschedulable,"
                " CrashLoopBackOff, ...).",
                kind="barchart",
                fmt="table",
            ),
            table(
                "Failed starts per user",
                "select user_email as user, count(*) as failed_starts, string_agg(distinct reason, ', ') as reasons,"
                f" max(last_seen_pending) as last_failed {FAILED_IN_RANGE} group by 1 order by 2 desc, 4 desc limit 50",
                "Users whose servers failed to start in the time range, and why: the people to write to.",
            ),
            table(
                "Servers waiting now",
                "select user_email as user, pod_name as pod, container_image as image,"
                " coalesce(node_name, '-') as node, phase, coalesce(reason, '-') as reason,"
                " round(age_seconds / 60.0, 1) as waiting_minutes"
                f" from pending_now where {in_scope()} order by age_seconds desc",
                "Every single-user pod pending or failed at the latest collection, longest waiting first.",
                width=24,
            ),
        ],
    )

"""What people keep: storage per user and department, its growth and cost, the volumes whose owner matches nobody,
and the stale homes to archive (storage rule, stale home rule)."""

from grafana.panels import dashboard, in_scope, panel, stat, table
from loader.config import DECLARED

BYTES = "bytes"
GIB = "1073741824.0"
# The volumes still there: read on the latest day their cluster's storage was read.
PRESENT = (
    f"from storage_volumes where {in_scope()} and last_day >= (select max(latest.last_day)"
    " from storage_volumes as latest where latest.layout = storage_volumes.layout"
    " and latest.cluster is not distinct from storage_volumes.cluster)"
)
STORAGE_DAYS_IN_RANGE = "from storage_days where $__timeFilter(storage_day::timestamptz)"
STALE_DAYS = DECLARED["STALE_HOME_DAYS"].default


def board() -> dict:
    return dashboard(
        "jhm-storage",
        "JupyterHub: storage",
        "What people keep in their home volumes and directories, how it grows, what it costs, and whose homes are"
        " stale.",
        [
            stat(
                "Stored now",
                f"select sum(used_bytes) as stored {PRESENT}",
                "Bytes held by the volumes and home directories still there (the last known size of each).",
                unit=BYTES,
            ),
            stat(
                "GB-months in range",
                f"select round(sum(gb_months)::numeric, 1) as gb_months {STORAGE_DAYS_IN_RANGE}",
                "GiB kept x months over the days of the time range (storage rule).",
            ),
            stat(
                "Stale homes",
                "select count(*) as stale_homes, sum(used_bytes) as bytes from stale_homes",
                f"Volumes whose owner's last session ended over STALE_HOME_DAYS (default {STALE_DAYS}) days ago,"
                " has none on record, or matches nobody (stale home rule).",
            ),
            panel(
                "Stored per day",
                f"select $__timeGroupAlias(storage_day::timestamptz, '1d'), round(sum(used_bytes) / {GIB}, 1) as gib"
                f" {STORAGE_DAYS_IN_RANGE} group by 1 order by 1",
                "GiB held at the end of each UTC day by the volumes of known owners.",
                width=24,
            ),
            table(
                "GB-months and cost per department",
                "select department, sum(users) as user_months, round(sum(gb_months)::numeric, 1) as gb_months,"
                " round(sum(storage_cost)::numeric, 2) as cost, min(currency) as currency from department_storage_usage"
                " where month >= date_trunc('month', $__timeFrom()::timestamptz)::date"
                " and month <= $__timeTo()::timestamptz::date group by 1 order by 3 desc",
                "GiB x months kept per department (as of each day) in the months of the time range, and their cost"
                " (cost_rates' storage_gb_month; empty without one).",
            ),
            table(
                "Largest users now",
                "select user_email as user, count(*) as volumes, sum(used_bytes) as used_bytes,"
                f" sum(limit_bytes) as limit_bytes, max(last_modified_at) as last_modified {PRESENT}"
                " and user_email is not null group by 1 order by 3 desc nulls last limit 50",
                "The 50 people holding the most, with what they may hold (quota or capacity).",
            ),
            table(
                "Stale homes, largest first",
                "select volume_name as volume, layout, coalesce(user_email, owner_name) as owner, full_name,"
                " department, last_session, days_since_last_session, stale_reason, used_bytes, last_modified_at"
                " from stale_homes order by used_bytes desc nulls last limit 500",
                "The offboarding and archive list: whom to contact, what it holds (stale home rule; `export"
                " stale-homes` writes all of it).",
                width=24,
            ),
            table(
                "Volumes whose owner matches nobody",
                "select layout, volume_name as volume, owner_name as shown_as, used_bytes, first_day, last_day"
                f" {PRESENT} and user_email is null order by used_bytes desc nulls last",
                "Volumes and home directories whose name no user's pods showed (or several did): kept, never guessed.",
                width=24,
            ),
        ],
    )

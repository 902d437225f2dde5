-- The predecessor's sessions (v1.2.3): the materialized view it refreshed in full after every
-- collection, and the per-user view over it. They read container_observations through the
-- search_path, so they can sit over any copy of it. Its hourly objects are in
-- predecessor_hourly_views.sql (plain PostgreSQL) or predecessor_timescaledb.sql.

-- Refreshed in full by the predecessor's collector after every collection.
create materialized view user_sessions as
with time_gaps as (
    select
        user_email,
        pod_name,
        node_name,
        "timestamp",
        container_base,
        container_version,
        lag("timestamp") over (partition by user_email, pod_name, node_name order by "timestamp") as prev_timestamp
    from container_observations
),

session_starts as (
    select
        *,
        case
            when prev_timestamp is null then 1
            when "timestamp" - prev_timestamp > interval '1 hour' then 1
            else 0
        end as is_new_session
    from time_gaps
),

sessions_numbered as (
    select
        *,
        sum(is_new_session) over (partition by user_email, pod_name, node_name order by "timestamp") as session_id
    from session_starts
)

select
    user_email,
    pod_name,
    node_name,
    session_id,
    min("timestamp") as session_start,
    max("timestamp") as session_end,
    extract(epoch from (max("timestamp") - min("timestamp"))) / 3600.0 as runtime_hours,
    mode() within group (order by container_base) as container_base,
    mode() within group (order by container_version) as container_version
from sessions_numbered
group by user_email, pod_name, node_name, session_id;

create unique index idx_user_sessions_unique on user_sessions (user_email, pod_name, node_name, session_id);
create index idx_user_sessions_user_time on user_sessions (user_email, session_start desc, session_end desc);
create index idx_user_sessions_time_range on user_sessions (session_start desc, session_end desc);
create index idx_user_sessions_node on user_sessions (node_name, session_start desc);
create index idx_user_sessions_container on user_sessions (container_base, session_start desc);

-- Migration 000004: GPU nodes are those named after a GPU model.
create view user_session_stats as
select
    user_email,
    sum(runtime_hours) as total_hours,
    sum(
        case
            when node_name ilike '%v100%' or node_name ilike '%a100%' or node_name ilike '%h100%' or node_name ilike '%h200%'
                then runtime_hours
            else 0
        end
    ) as gpu_hours,
    sum(
        case
            when not (node_name ilike '%v100%' or node_name ilike '%a100%' or node_name ilike '%h100%' or node_name ilike '%h200%')
                then runtime_hours
            else 0
        end
    ) as cpu_hours,
    count(*) as total_sessions,
    count(distinct container_base) as applications_used,
    min(session_start) as first_session,
    max(session_end) as last_session
from user_sessions
group by user_email;

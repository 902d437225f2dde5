-- The predecessor's session views, refreshed in full every 5 minutes. They read
-- container_observations through the search_path, so they can sit over any copy of it.

create materialized view user_sessions as
with ordered as (
    select
        user_email,
        pod_name,
        node_name,
        container_base,
        container_version,
        "timestamp",
        lag("timestamp") over (partition by user_email, pod_name, node_name order by "timestamp") as previous_timestamp
    from container_observations
),

numbered as (
    select
        *,
        sum(case when previous_timestamp is null or "timestamp" - previous_timestamp > interval '60 minutes' then 1 else 0 end)
            over (partition by user_email, pod_name, node_name order by "timestamp") as session_number
    from ordered
)

select
    user_email,
    pod_name,
    node_name,
    session_number,
    min("timestamp") as session_start,
    max("timestamp") as session_end,
    extract(epoch from max("timestamp") - min("timestamp")) / 3600.0 as runtime_hours,
    mode() within group (order by container_base) as container_base,
    mode() within group (order by container_version) as container_version,
    case when node_name ilike '%cpu%' then 'cpu' else 'gpu' end as node_type
from numbered
group by user_email, pod_name, node_name, session_number;

create unique index user_sessions_key on user_sessions (user_email, pod_name, node_name, session_start);

create view user_session_stats as
select
    user_email,
    count(*) as total_sessions,
    sum(runtime_hours) as total_hours,
    sum(runtime_hours) filter (where node_type = 'gpu') as gpu_hours,
    sum(runtime_hours) filter (where node_type = 'cpu') as cpu_hours,
    min(session_start) as first_session,
    max(session_end) as last_session
from user_sessions
group by user_email;

{{ config(materialized='view') }}

{#- How long users waited for their servers (docs block startup_rule): per day the sessions started, image, node type
    and GPU model, the start-ups measured and their median and 95th percentile, with the two parts (waiting for a
    node; pulling the image, mounting volumes and starting the server). A view. -#}

with

sessions as (
    select * from {{ ref('user_sessions') }}
    where startup_seconds is not null
)

select
    (date_trunc('day', session_start at time zone 'UTC'))::date as day,
    container_base,
    node_type,
    coalesce(gpu_model_label, '-') as gpu_model,  -- noqa: RF04
    count(*) as measured_starts,
    percentile_cont(0.5) within group (order by startup_seconds) as p50_startup_seconds,
    percentile_cont(0.95) within group (order by startup_seconds) as p95_startup_seconds,
    percentile_cont(0.5) within group (order by scheduling_seconds) as p50_scheduling_seconds,
    percentile_cont(0.5) within group (order by start_seconds) as p50_start_seconds
from sessions
group by 1, 2, 3, 4

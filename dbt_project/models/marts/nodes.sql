-- depends_on: {{ source('raw', 'collector_runs') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='node_key',
        on_schema_change='fail',
        indexes=[
            {'columns': ['node_key'], 'unique': True},
            {'columns': ['last_collector_run_id']},
        ],
    )
}}

{#- A node dimension per cluster (two clusters may both have a `worker-1`), with the node rule
    applied; incremental, so it costs only what changed. first_seen and last_seen only ever widen,
    so they merge with the previous row. -#}

with

{% if is_incremental() %}

sessions as (
    {{ sessions_changed_since_last_run() }}
),

previous as (
    select * from {{ this }}
),

{% else %}

sessions as (
    select * from {{ ref('user_sessions') }}
),

previous as (
    select
        null::text as node_key,
        null::int as max_gpu_count,
        null::timestamptz as first_seen,
        null::timestamptz as last_seen
    where false
),

{% endif %}

changed as (
    select
        {{ node_key('cluster', 'node_name') }} as node_key,
        cluster,
        node_name,
        max(gpu_count) as max_gpu_count,
        min(session_start) as first_seen,
        max(session_end) as last_seen,
        max(last_collector_run_id) as last_collector_run_id
    from sessions
    group by cluster, node_name
)

select
    changed.node_key,
    changed.cluster,
    changed.node_name,
    -- A node is GPU once a pod on it was given GPUs, CPU while known pods were given none; only where no
    -- request is known (rows from before adoption) does its name decide (node_rule).
    {{ gpu_or_cpu('greatest(changed.max_gpu_count, previous.max_gpu_count)', 'changed.node_name') }} as node_type,
    greatest(changed.max_gpu_count, previous.max_gpu_count) as max_gpu_count,
    least(changed.first_seen, previous.first_seen) as first_seen,
    greatest(changed.last_seen, previous.last_seen) as last_seen,
    changed.last_collector_run_id
from changed
left join previous on changed.node_key = previous.node_key

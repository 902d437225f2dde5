{{ config(materialized='table', indexes=[{'columns': ['node_name'], 'unique': True}]) }}

with

sessions as (
    select * from {{ ref('user_sessions') }}
),

per_node as (
    select
        node_name,
        {{ node_type('node_name') }} as node_type,
        min(session_start) as first_seen,
        max(session_end) as last_seen,
        count(*) as total_sessions,
        count(distinct user_email) as distinct_users,
        sum(runtime_hours) as total_hours,
        sum(gpu_device_hours) as gpu_device_hours
    from sessions
    group by node_name
)

select * from per_node

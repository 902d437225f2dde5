{{ config(materialized='table', indexes=[{'columns': ['user_email'], 'unique': True}]) }}

with

sessions as (
    select * from {{ ref('user_sessions') }}
),

per_user as (
    select
        user_email,
        sum(runtime_hours) as total_hours,
        sum(gpu_hours) as gpu_hours,
        sum(cpu_hours) as cpu_hours,
        sum(gpu_device_hours) as gpu_device_hours,
        count(*) as total_sessions,
        count(distinct container_base) as applications_used,
        min(session_start) as first_session,
        max(session_end) as last_session
    from sessions
    group by user_email
)

select * from per_user

{{ config(materialized='view') }}

{#- Each session counts for the department its user had when it started (users_history). A view:
    a department change can re-attribute old months (a user's first directory entry reaches back
    to their first session), so a stored copy would have to be rebuilt from all history every
    cycle; computed on query, it costs nothing in the 5-minute cycle. -#}

with

sessions as (
    select * from {{ ref('department_sessions') }}
),

per_department_month as (
    select
        (date_trunc('month', session_start at time zone 'UTC'))::date as month,
        department,
        count(distinct user_email) as users,
        count(*) as sessions,
        sum(runtime_hours) as total_hours,
        sum(gpu_hours) as gpu_hours,
        sum(cpu_hours) as cpu_hours,
        sum(gpu_device_hours) as gpu_device_hours
    from sessions
    group by 1, 2
)

select * from per_department_month

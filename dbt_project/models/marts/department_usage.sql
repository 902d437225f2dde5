{{ config(materialized='view') }}

{#- Per department and calendar month (UTC): each session belongs to the department its user had when it started
    (users_history), and its hours count in the days they happened (session_days). A view: a department change can
    re-attribute old months (a user's first directory entry reaches back to their first session), so a stored copy
    would have to be rebuilt from all history every cycle. -#}

with

attributed_days as (
    select * from {{ ref('int_department_days') }}
),

per_department_month as (
    select
        month,
        department,
        count(distinct user_email) as users,
        count(distinct session_id) filter (
            where date_trunc('month', session_start at time zone 'UTC')::date = month
        ) as sessions,
        sum(hours) as total_hours,
        sum(gpu_hours) as gpu_hours,
        sum(cpu_hours) as cpu_hours,
        sum(gpu_device_hours) as gpu_device_hours,
        sum(idle_gpu_hours) as idle_gpu_hours,
        sum(active_hours) as active_hours,
        {{ efficiency('efficiency_cpu_used_core_hours', 'efficiency_cpu_requested_core_hours') }} as cpu_efficiency,
        {{ efficiency('efficiency_gpu_used_device_hours', 'efficiency_gpu_held_device_hours') }} as gpu_efficiency,
        sum(cost) as cost,
        min(currency) as currency,
        coalesce(sum(hours) filter (where cost is null), 0) as uncosted_hours
    from attributed_days
    group by month, department
)

select * from per_department_month

{{ config(materialized='view') }}

{#- Per department and calendar month (UTC): each session belongs to the department its user had when it
    started (users_history), and its hours count in the days they happened (session_days). A view: a
    department change can re-attribute old months (a user's first directory entry reaches back to their
    first session), so a stored copy would have to be rebuilt from all history every cycle. -#}

with

sessions as (
    select * from {{ ref('department_sessions') }}
),

days as (
    select * from {{ ref('session_days') }}
),

costs as (
    select * from {{ ref('int_session_day_costs') }}
),

attributed_days as (
    select
        (date_trunc('month', days.day))::date as month,
        sessions.department,
        sessions.user_email,
        sessions.session_id,
        sessions.session_start,
        days.hours,
        days.gpu_hours,
        days.cpu_hours,
        days.gpu_device_hours,
        days.idle_gpu_hours,
        days.efficiency_cpu_used_core_hours,
        days.efficiency_cpu_requested_core_hours,
        costs.cost,
        costs.currency
    from days
    inner join sessions on days.session_id = sessions.session_id
    -- One cost row per session-day: hours never depend on the rates.
    left join costs on days.session_id = costs.session_id and days.day = costs.day
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
        {{ cpu_efficiency('efficiency_cpu_used_core_hours', 'efficiency_cpu_requested_core_hours') }} as cpu_efficiency,
        sum(cost) as cost,
        min(currency) as currency,
        coalesce(sum(hours) filter (where cost is null), 0) as uncosted_hours
    from attributed_days
    group by month, department
)

select * from per_department_month

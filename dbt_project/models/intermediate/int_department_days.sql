-- depends_on: {{ ref('int_cost_rates') }}
{{ config(materialized='view') }}

{#- Every session-day with the department its user had when the session started, and its cost: what the department
    rollups aggregate. One scan of session_days, joined to the (small) department history and rate tables: a day row
    cannot multiply (one history version covers a moment; one rate per model and day). -#}

with

days as (
    select * from {{ ref('session_days') }}
),

department_history as (
    select * from {{ ref('int_department_history') }}
),

attributed_days as (
    select
        (date_trunc('month', days.day))::date as month,
        days.day,
        coalesce(department_history.department, 'Unknown') as department,
        days.user_email,
        days.cluster,
        days.session_id,
        days.session_start,
        days.gpu_model_label,
        days.hours,
        days.gpu_hours,
        days.cpu_hours,
        days.gpu_device_hours,
        days.cpu_requested_core_hours,
        days.idle_gpu_hours,
        days.idle_signal,
        days.active_hours,
        days.efficiency_cpu_used_core_hours,
        days.efficiency_cpu_requested_core_hours,
        days.efficiency_gpu_used_device_hours,
        days.efficiency_gpu_held_device_hours,
        {{ cost_of_day('days') }} as cost,
        {{ currency_of_day() }} as currency
    from days
    left join department_history
        on {{ held_at_start('department_history', 'email', 'days.user_email', 'days.session_start') }}
    {{ join_rates_of_day('days') }}
)

select * from attributed_days

{{ config(materialized='view') }}

{#- Per department, calendar month (UTC) and GPU model: GPU hours held, how many of them idle (and by which signal),
    GPU efficiency and cost. The model is DCGM's (or the node's label) where known, else the class the node's name
    says (docs block gpu_rule). -#}

with

attributed_days as (
    select * from {{ ref('int_department_days') }}
    where gpu_hours > 0
),

per_model as (
    select
        month,
        department,
        gpu_model_label as gpu_model,
        count(distinct user_email) as users,
        sum(gpu_hours) as gpu_hours,
        sum(gpu_device_hours) as gpu_device_hours,
        sum(idle_gpu_hours) as idle_gpu_hours,
        coalesce(sum(idle_gpu_hours) filter (where idle_signal = 'gpu'), 0) as idle_gpu_hours_measured_on_gpu,
        coalesce(sum(idle_gpu_hours) filter (where idle_signal = 'cpu'), 0) as idle_gpu_hours_from_cpu_proxy,
        {{ efficiency('efficiency_gpu_used_device_hours', 'efficiency_gpu_held_device_hours') }} as gpu_efficiency,
        sum(cost) as cost,
        min(currency) as currency
    from attributed_days
    group by month, department, gpu_model_label
)

select * from per_model

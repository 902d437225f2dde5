{{ config(materialized='view') }}

{#- Every session-day with the department its user had when the session started and what it cost: the rows any
    period's department figures add up from (a month, a term, a week), as `report` does. A view. -#}

with

department_days as (
    select * from {{ ref('int_department_days') }}
)

select
    month,
    day,
    department,
    user_email,
    cluster,
    session_id,
    session_start,
    gpu_model_label,
    hours,
    gpu_hours,
    cpu_hours,
    gpu_device_hours,
    idle_gpu_hours,
    idle_signal,
    active_hours,
    efficiency_cpu_used_core_hours,
    efficiency_cpu_requested_core_hours,
    efficiency_gpu_used_device_hours,
    efficiency_gpu_held_device_hours,
    cost,
    currency
from department_days

{{ config(materialized='view') }}

{#- Per hub group (course, lab) and calendar month (UTC): users, sessions and hours, attributed to the groups each user
    belonged to when the session started (docs block group_rule). A view. -#}

with

group_days as (
    select * from {{ ref('int_group_days') }}
)

select
    month,
    group_name,
    count(distinct user_email) as users,
    count(distinct session_id) filter (
        where date_trunc('month', session_start at time zone 'UTC')::date = month
    ) as sessions,
    sum(hours) as total_hours,
    sum(gpu_hours) as gpu_hours,
    sum(cpu_hours) as cpu_hours,
    sum(idle_gpu_hours) as idle_gpu_hours,
    sum(active_hours) as active_hours,
    sum(cost) as cost
from group_days
group by month, group_name

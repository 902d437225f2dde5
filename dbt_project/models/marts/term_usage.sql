{{ config(materialized='view') }}

{#- Per academic term (seed terms) and department: the hours of the term's days, so hours split at term boundaries
    as they split at midnight (docs block term_rule); a user active in two terms counts in both. A view. -#}

with

department_days as (
    select * from {{ ref('int_department_days') }}
),

term_days as (
    select * from {{ ref('int_term_days') }}
)

select
    term_days.term,
    term_days.starts_on,
    term_days.ends_on,
    department_days.department,
    count(distinct department_days.user_email) as users,
    count(distinct department_days.session_id) filter (
        where (department_days.session_start at time zone 'UTC')::date between term_days.starts_on and term_days.ends_on
    ) as sessions,
    sum(department_days.hours) as total_hours,
    sum(department_days.gpu_hours) as gpu_hours,
    sum(department_days.cpu_hours) as cpu_hours,
    sum(department_days.idle_gpu_hours) as idle_gpu_hours,
    sum(department_days.active_hours) as active_hours,
    sum(department_days.cost) as cost
from department_days
inner join term_days on department_days.day = term_days.day
group by term_days.term, term_days.starts_on, term_days.ends_on, department_days.department

{{ config(materialized='view') }}

{#- Per academic term and hub group: what `export groups` writes (docs blocks term_rule and group_rule). A view. -#}

with

group_days as (
    select * from {{ ref('int_group_days') }}
),

term_days as (
    select * from {{ ref('int_term_days') }}
)

select
    term_days.term,
    term_days.starts_on,
    term_days.ends_on,
    group_days.group_name,
    count(distinct group_days.user_email) as users,
    count(distinct group_days.session_id) filter (
        where (group_days.session_start at time zone 'UTC')::date between term_days.starts_on and term_days.ends_on
    ) as sessions,
    sum(group_days.hours) as total_hours,
    sum(group_days.gpu_hours) as gpu_hours,
    sum(group_days.active_hours) as active_hours
from group_days
inner join term_days on group_days.day = term_days.day
group by term_days.term, term_days.starts_on, term_days.ends_on, group_days.group_name

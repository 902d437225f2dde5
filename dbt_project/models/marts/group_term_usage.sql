{{ config(materialized='view') }}

{#- Per academic term and hub group: what `export groups` writes (docs blocks term_rule and group_rule). A view. -#}

with

group_days as (
    select * from {{ ref('int_group_days') }}
),

terms as (
    select * from {{ ref('int_terms') }}
)

select
    terms.term,
    terms.starts_on,
    terms.ends_on,
    group_days.group_name,
    count(distinct group_days.user_email) as users,
    count(distinct group_days.session_id) filter (
        where (group_days.session_start at time zone 'UTC')::date between terms.starts_on and terms.ends_on
    ) as sessions,
    sum(group_days.hours) as total_hours,
    sum(group_days.gpu_hours) as gpu_hours,
    sum(group_days.active_hours) as active_hours
from group_days
inner join terms on group_days.day between terms.starts_on and terms.ends_on
group by terms.term, terms.starts_on, terms.ends_on, group_days.group_name

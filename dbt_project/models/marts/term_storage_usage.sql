{{ config(materialized='view') }}

{#- Per academic term (seed terms) and department: the GB-months of the term's days, split at term boundaries as
    at midnight (docs blocks storage_rule, term_rule). -#}

with

storage_days as (
    select * from {{ ref('storage_days') }}
),

term_days as (
    select * from {{ ref('int_term_days') }}
)

select
    term_days.term,
    term_days.starts_on,
    term_days.ends_on,
    storage_days.department,
    count(distinct storage_days.user_email) as users,
    sum(storage_days.gb_months) as gb_months,
    sum(storage_days.storage_cost) as storage_cost,
    min(storage_days.currency) as currency
from storage_days
inner join term_days on storage_days.storage_day = term_days.day
group by term_days.term, term_days.starts_on, term_days.ends_on, storage_days.department

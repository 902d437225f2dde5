{{ config(materialized='view') }}

{#- Per department and calendar month (UTC): the GB-months its users kept and their cost (docs block storage_rule);
    a user counts in the department they had on each day. -#}

with

storage_days as (
    select * from {{ ref('storage_days') }}
)

select
    month,
    department,
    count(distinct user_email) as users,
    sum(gb_months) as gb_months,
    sum(storage_cost) as storage_cost,
    min(currency) as currency
from storage_days
group by month, department

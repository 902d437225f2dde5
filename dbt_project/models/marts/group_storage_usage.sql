{{ config(materialized='view') }}

{#- Per hub group and calendar month (UTC): the GB-months its members kept while members, and their cost (docs
    blocks storage_rule, group_rule). -#}

with

group_days as (
    select * from {{ ref('int_storage_group_days') }}
)

select
    (date_trunc('month', storage_day))::date as month,
    group_name,
    count(distinct user_email) as users,
    sum(gb_months) as gb_months,
    sum(storage_cost) as storage_cost,
    min(currency) as currency
from group_days
group by (date_trunc('month', storage_day))::date, group_name

{{ config(materialized='view') }}

{#- Per user and calendar month (UTC): GB-months kept and their cost (docs block storage_rule), by the department the
    user had on each day (a change mid-month gives a row per department). -#}

with

storage_days as (
    select * from {{ ref('storage_days') }}
)

select
    month,
    user_email,
    department,
    count(*) as days_with_storage,
    max(largest_used_bytes) as largest_used_bytes,
    sum(gb_months) as gb_months,
    sum(storage_cost) as storage_cost,
    min(currency) as currency
from storage_days
group by month, user_email, department

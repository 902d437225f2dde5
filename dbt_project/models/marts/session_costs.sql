{{ config(materialized='view') }}

{#- What each session cost (docs block cost_rule), day by day at the rate valid that day: GPUs requested
    x hours x the GPU-hour rate, requested CPU cores x hours x the core-hour rate, requested memory (GiB)
    x hours x the GiB-hour rate. Null where no rate covers a day or a request is unknown: never zero. -#}

with

days as (
    select * from {{ ref('session_days') }}
),

rates as (
    select * from {{ ref('int_cost_rates') }}
),

costed_days as (
    select
        days.session_id,
        days.day,
        days.hours,
        rates.currency,
        days.gpu_device_hours * rates.gpu_hour
        + days.cpu_core_hours * rates.cpu_core_hour
        + days.memory_gib_hours * rates.memory_gib_hour as cost
    from days
    left join rates
        on days.day >= rates.valid_from and days.day < rates.valid_to
)

select
    session_id,
    case when count(cost) = count(*) then sum(cost) end as cost,
    min(currency) as currency,
    sum(hours) filter (where cost is null) as uncosted_hours
from costed_days
group by session_id

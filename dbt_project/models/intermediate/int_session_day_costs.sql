{{ config(materialized='view') }}

{#- What each session-day cost (docs block cost_rule), at the one rate valid that day: GPUs requested x hours x the
    GPU-hour rate + requested CPU cores x hours x the core-hour rate + requested memory (GiB) x hours x the
    GiB-hour rate. Null where no rate covers the day or a request is unknown: never zero. One row per session-day,
    rates or not, so nothing joined to it can change hours. -#}

with

days as (
    select * from {{ ref('session_days') }}
),

rates as (
    select * from {{ ref('int_cost_rates') }}
),

costed as (
    select
        days.session_id,
        days.day,
        days.hours,
        rates.currency,
        days.gpu_device_hours * rates.gpu_hour
        + days.cpu_requested_core_hours * rates.cpu_core_hour
        + days.memory_gib_hours * rates.memory_gib_hour as cost
    from days
    -- int_cost_rates refuses overlapping periods: at most one rate per day, so no day row can multiply.
    left join rates
        on
            days.day >= rates.valid_from
            and days.day < rates.valid_to
            and rates.gpu_model is null
)

select * from costed

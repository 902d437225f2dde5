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
        rate.currency,
        days.gpu_device_hours * rate.gpu_hour
        + days.cpu_requested_core_hours * rate.cpu_core_hour
        + days.memory_gib_hours * rate.memory_gib_hour as cost
    from days
    left join lateral (
        select rates.*
        from rates
        where
            days.day >= rates.valid_from
            and days.day < rates.valid_to
            and rates.gpu_model is null
        -- int_cost_rates refuses overlapping periods; the limit only keeps one row per day whatever happens.
        order by rates.valid_from desc
        limit 1
    ) as rate on true
)

select * from costed

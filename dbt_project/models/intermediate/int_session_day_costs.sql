-- depends_on: {{ ref('int_cost_rates') }}
{{ config(materialized='view') }}

{#- What each session-day cost (docs block cost_rule), at the rate valid that day for the session's GPU model, else
    for any model. One row per session-day, rates or not. -#}

with

days as (
    select * from {{ ref('session_days') }}
),

costed as (
    select
        days.session_id,
        days.day,
        days.hours,
        {{ currency_of_day() }} as currency,
        {{ cost_of_day('days') }} as cost
    from days
    {{ join_rates_of_day('days') }}
)

select * from costed

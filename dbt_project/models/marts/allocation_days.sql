{{ config(materialized='view') }}

{#- Per allocation and day of its period, up to today (docs block allocation_rule): what was used that day and so
    far, what remains, the percent, the even pace, the burn rate of the last 14 days, the projected exhaustion date
    at that rate, and the status. A view: computed when read, so the 5-minute cycle pays nothing for it. -#}

with

allocations as (
    select * from {{ ref('int_allocations') }}
),

usage_days as (
    select * from {{ ref('int_allocation_usage_days') }}
),

calendar as (
    select
        allocations.*,
        (period_day.day)::date as day
    from allocations
    cross join lateral generate_series(
        allocations.starts_on, least(allocations.ends_on, {{ utc_today() }}), interval '1 day'
    ) as period_day (day)
),

daily as (
    select
        calendar.*,
        coalesce(usage_days.used, 0) as used_on_day,
        calendar.day - calendar.starts_on + 1 as days_elapsed,
        calendar.ends_on - calendar.starts_on + 1 as days_in_period
    from calendar
    left join usage_days
        on
            calendar.allocation_name = usage_days.allocation_name
            and calendar.day = usage_days.day
),

running as (
    select
        daily.*,
        sum(daily.used_on_day) over allocation_so_far as used,
        sum(daily.used_on_day) over last_14_days / least(14, daily.days_elapsed) as burn_rate_per_day
    from daily
    window
        allocation_so_far as (partition by daily.allocation_name order by daily.day),
        last_14_days as (
            partition by daily.allocation_name order by daily.day rows between 13 preceding and current row
        )
),

measured as (
    select
        running.*,
        running.amount - running.used as remaining,
        100 * running.used / running.amount as percent_used,
        running.amount * running.days_elapsed / running.days_in_period as even_pace_used,
        min(running.day) filter (where running.used >= running.amount) over (
            partition by running.allocation_name order by running.day
        ) as exhausted_on
    from running
)

select
    allocation_name,
    grantee_kind,
    grantee,
    resource,
    amount,
    term,
    starts_on,
    ends_on,
    day,
    used_on_day,
    used,
    remaining,
    percent_used,
    even_pace_used,
    burn_rate_per_day,
    case
        when exhausted_on is not null then exhausted_on
        when burn_rate_per_day > 0 then day + ceil(remaining / burn_rate_per_day)::integer
    end as projected_exhaustion_on,
    case
        when exhausted_on is not null then 'exhausted'
        when percent_used >= first_warning_percent then 'warning'
        else 'ok'
    end as status,
    case
        when exhausted_on is not null then 100
        when percent_used >= second_warning_percent then second_warning_percent
        when percent_used >= first_warning_percent then first_warning_percent
        else 0
    end as threshold_passed_percent,
    first_warning_percent,
    second_warning_percent
from measured

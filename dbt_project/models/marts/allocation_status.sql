{{ config(materialized='view') }}

{#- Every allocation as of today, or its last day once ended (docs block allocation_rule): used, remaining,
    percent, burn rate, projected exhaustion and status; an allocation not yet begun has used nothing. What the
    allocations dashboard lists, the alert rules watch and `export allocations` writes. -#}

with

allocations as (
    select * from {{ ref('int_allocations') }}
),

latest_days as (
    select * from {{ ref('allocation_days') }}
    where day = least(ends_on, {{ utc_today() }})
)

select
    allocations.allocation_name,
    allocations.grantee_kind,
    allocations.grantee,
    allocations.resource,
    allocations.amount,
    allocations.term,
    allocations.starts_on,
    allocations.ends_on,
    case
        when allocations.starts_on > {{ utc_today() }} then 'upcoming'
        when allocations.ends_on < {{ utc_today() }} then 'ended'
        else 'current'
    end as period_state,
    latest_days.day as as_of,
    coalesce(latest_days.used, 0) as used,
    coalesce(latest_days.remaining, allocations.amount) as remaining,
    coalesce(latest_days.percent_used, 0) as percent_used,
    latest_days.even_pace_used,
    latest_days.burn_rate_per_day,
    latest_days.projected_exhaustion_on,
    latest_days.projected_exhaustion_on <= allocations.ends_on as runs_out_before_end,
    coalesce(latest_days.status, 'ok') as status,
    coalesce(latest_days.threshold_passed_percent, 0) as threshold_passed_percent,
    allocations.first_warning_percent,
    allocations.second_warning_percent
from allocations
left join latest_days on allocations.allocation_name = latest_days.allocation_name

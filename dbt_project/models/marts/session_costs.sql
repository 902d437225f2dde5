{{ config(materialized='view') }}

{#- What each session cost (docs block cost_rule): its days at the rate valid on each. -#}

with

costed_days as (
    select * from {{ ref('int_session_day_costs') }}
)

select
    session_id,
    case when count(cost) = count(*) then sum(cost) end as cost,
    min(currency) as currency,
    coalesce(sum(hours) filter (where cost is null), 0) as uncosted_hours
from costed_days
group by session_id

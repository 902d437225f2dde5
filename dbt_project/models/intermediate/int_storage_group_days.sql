{{ config(materialized='view') }}

{#- Each user's storage of each day (volume by volume: groups belong to a hub, and so to a cluster) attributed to
    the hub groups the user was in at day end (docs block group_rule); a user in no group counts under
    `(no group)`, a user in two groups in both. -#}

with

volume_days as (
    select * from {{ ref('int_storage_volume_days') }}
),

memberships as (
    select * from {{ ref('int_group_memberships') }}
),

rates as (
    select * from {{ ref('int_cost_rates') }}
)

select
    coalesce(memberships.group_name, '(no group)') as group_name,
    volume_days.cluster,
    volume_days.storage_day,
    volume_days.user_email,
    sum(volume_days.gb_months) as gb_months,
    sum(volume_days.gb_months) * min(rates.storage_gb_month) as storage_cost,
    min(case when rates.storage_gb_month is not null then rates.currency end) as currency
from volume_days
left join memberships
    on
        {{ held_at_start('memberships', 'user_email', 'volume_days.user_email',
            storage_day_end('volume_days.storage_day')) }}
        and memberships.cluster is not distinct from volume_days.cluster
left join rates
    on
        volume_days.storage_day >= rates.valid_from
        and volume_days.storage_day < rates.valid_to
        and rates.gpu_model is null
where volume_days.user_email is not null
group by
    coalesce(memberships.group_name, '(no group)'), volume_days.cluster, volume_days.storage_day, volume_days.user_email

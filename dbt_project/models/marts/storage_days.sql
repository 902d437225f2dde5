{{ config(materialized='view') }}

{#- Per user and UTC day: what their volumes held at day end (the last known figure where nothing read one that
    day), the day's largest, their quota, files and last change, the day's GB-months and their cost (docs block
    storage_rule), with the department the user had at day end. Volumes whose owner matches nobody are in
    storage_volumes, not here. A view over the volume days (indexed by day). -#}

with

volume_days as (
    select * from {{ ref('int_storage_volume_days') }}
),

department_history as (
    select * from {{ ref('int_department_history') }}
),

rates as (
    select * from {{ ref('int_cost_rates') }}
),

per_user_day as (
    select
        storage_day,
        user_email,
        count(*) as volumes,
        sum(used_bytes) as used_bytes,
        sum(largest_used_bytes) as largest_used_bytes,
        sum(coalesce(quota_bytes, capacity_bytes)) as limit_bytes,
        sum(file_count) as file_count,
        max(last_modified_at) as last_modified_at,
        sum(gb_months) as gb_months
    from volume_days
    where user_email is not null
    group by storage_day, user_email
)

select
    per_user_day.storage_day,
    (date_trunc('month', per_user_day.storage_day))::date as month,
    per_user_day.user_email,
    coalesce(department_history.department, 'Unknown') as department,
    per_user_day.volumes,
    per_user_day.used_bytes,
    per_user_day.largest_used_bytes,
    per_user_day.limit_bytes,
    per_user_day.file_count,
    per_user_day.last_modified_at,
    per_user_day.gb_months,
    per_user_day.gb_months * rates.storage_gb_month as storage_cost,
    case when rates.storage_gb_month is not null then rates.currency end as currency
from per_user_day
left join department_history
    on {{ held_at_start('department_history', 'email', 'per_user_day.user_email',
        storage_day_end('per_user_day.storage_day')) }}
left join rates
    on
        per_user_day.storage_day >= rates.valid_from
        and per_user_day.storage_day < rates.valid_to
        and rates.gpu_model is null

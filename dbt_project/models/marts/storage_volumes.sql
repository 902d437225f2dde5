-- depends_on: {{ source('raw', 'collector_runs') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_from',
        meta={'replace': {'key': storage_volume_key(), 'from': 'first_day'}},
        on_schema_change='fail',
        indexes=[
            {'columns': ['volume_name', 'layout']},
            {'columns': ['user_email']},
            {'columns': ['last_collector_run_id']},
        ],
    )
}}

{#- One row per storage volume: its latest day's figures (the last known where nothing read it that day), its owner
    then, and its first and latest day. Incremental: the volumes whose days were recomputed, each read by the index
    on its days (two rows, whatever its history). -#}

with

volume_days as (
    select * from {{ ref('int_storage_volume_days') }}
),

changed_volumes as (
    select distinct {{ storage_volume_key() | join(', ') }}
    from volume_days
    {%- if is_incremental() %}
    where {{ runs_since_last_build('last_collector_run_id') }}
    {%- endif %}
),

volumes as (
    select
        latest_day.*,
        first_day.storage_day as first_day
    from changed_volumes
    cross join
        lateral (
            select one_volume.*
            from volume_days as one_volume
            where {{ session_key_matches('one_volume', 'changed_volumes', storage_volume_key()) }}
            order by one_volume.storage_day desc
            limit 1
        ) as latest_day
    cross join lateral (
        select one_volume.storage_day
        from volume_days as one_volume
        where {{ session_key_matches('one_volume', 'changed_volumes', storage_volume_key()) }}
        order by one_volume.storage_day
        limit 1
    ) as first_day
)

select
    {{ storage_volume_key() | join(', ') }},
    owner_name,
    user_email,
    server_name,
    first_day,
    storage_day as last_day,
    used_bytes,
    largest_used_bytes,
    capacity_bytes,
    quota_bytes,
    coalesce(quota_bytes, capacity_bytes) as limit_bytes,
    file_count,
    last_modified_at,
    used_carried_forward,
    last_collector_run_id
from volumes

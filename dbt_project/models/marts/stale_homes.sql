{{ config(materialized='view') }}

{#- The offboarding and archive list (docs block stale_home_rule): every volume still there (seen on the latest day
    its cluster's storage was read) whose owner's last session ended more than var('stale_home_days') days ago, whose
    owner has no session on record, or whose owner matches nobody. Largest first in the panel and the export. -#}

with

volumes as (
    select
        *,
        max(last_day) over (partition by layout, cluster) as latest_day_read
    from {{ ref('storage_volumes') }}
),

user_stats as (
    select * from {{ ref('user_session_stats') }}
),

people as (
    select * from {{ ref('users') }}
),

candidates as (
    select
        volumes.layout,
        volumes.cluster,
        volumes.namespace,
        volumes.volume_name,
        volumes.owner_name,
        volumes.user_email,
        people.full_name,
        people.department,
        user_stats.last_session,
        (extract(epoch from now() - user_stats.last_session) / 86400)::integer as days_since_last_session,
        case
            when volumes.user_email is null then 'owner unknown'
            when user_stats.last_session is null then 'no session recorded'
            else 'last session over {{ var("stale_home_days") | int }} days ago'
        end as stale_reason,
        volumes.used_bytes,
        volumes.limit_bytes,
        volumes.file_count,
        volumes.last_modified_at,
        volumes.first_day,
        volumes.last_day
    from volumes
    left join user_stats on volumes.user_email = user_stats.user_email
    left join people on volumes.user_email = people.email
    where
        volumes.last_day = volumes.latest_day_read
        and (
            volumes.user_email is null
            or user_stats.last_session is null
            or user_stats.last_session < now() - interval '1 day' * {{ var('stale_home_days') | int }}
        )
)

select * from candidates

{{ config(materialized='table') }}

{#- The CSV export: exactly the columns of spec 4, in this order, then active_hours and median_startup_seconds. -#}

with

stats as (
    select * from {{ ref('user_session_stats') }}
),

directory as (
    select * from {{ ref('users') }}
),

export as (
    select
        directory.full_name as fullname,
        stats.user_email as email,
        directory.department,
        directory.job_title as jobtitle,
        round(stats.gpu_hours::numeric, 2) as gpu_hours,
        round(stats.cpu_hours::numeric, 2) as cpu_hours,
        round(stats.total_hours::numeric, 2) as total_hours,
        stats.total_sessions,
        {{ utc_iso8601('stats.last_session') }} as last_seen,
        stats.favorite_container,
        -- Appended after the fixed columns of spec 4 (issue 20): readers of the first ten are undisturbed.
        round(stats.active_hours::numeric, 2) as active_hours,
        round(stats.median_startup_seconds::numeric, 1) as median_startup_seconds
    from stats
    left join directory on stats.user_email = directory.email
)

select * from export

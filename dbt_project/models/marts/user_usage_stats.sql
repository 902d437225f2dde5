{{ config(materialized='table') }}

{#- The CSV export: exactly these columns, in this order (spec 4). -#}

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
        stats.favorite_container
    from stats
    left join directory on stats.user_email = directory.email
)

select * from export

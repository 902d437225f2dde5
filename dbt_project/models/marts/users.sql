{{
    config(
        materialized='table',
        indexes=[{'columns': ['email'], 'unique': True}],
        post_hook="{{ distribute_by_user('email') }}",
    )
}}

with

directory as (
    select * from {{ ref('stg_raw__users') }}
),

observed as (
    select
        user_email,
        first_session as first_seen,
        last_session as last_seen
    from {{ ref('user_session_stats') }}
),

combined as (
    select
        coalesce(observed.user_email, directory.email) as email,
        directory.full_name,
        directory.department,
        directory.job_title,
        directory.college,
        coalesce(directory.directory_status, 'not_fetched') as directory_status,
        directory.graph_id,
        directory.fetched_at,
        observed.first_seen,
        observed.last_seen
    from observed
    full outer join directory
        on observed.user_email = directory.email
)

select * from combined

with

sessions as (
    select * from {{ ref('user_sessions') }}
),

hours_per_container as (
    select
        user_email,
        container_base,
        sum(runtime_hours) as runtime_hours,
        count(*) as sessions
    from sessions
    group by user_email, container_base
),

ranked as (
    select
        *,
        -- Ties go to the container with more sessions, then to the alphabetically first name.
        row_number() over (
            partition by user_email
            order by runtime_hours desc, sessions desc, container_base asc
        ) as rank_by_hours
    from hours_per_container
)

select * from ranked

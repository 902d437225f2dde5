-- No two sessions of one session key overlap or touch.
with

ordered as (
    select
        session_id,
        {{ session_key() | join(', ') }},
        session_start,
        lag(session_end) over (
            partition by {{ session_key() | join(', ') }} order by session_start
        ) as previous_session_end
    from {{ ref('user_sessions') }}
)

select *
from ordered
where previous_session_end >= session_start

-- No two sessions of one (user_email, pod_name, node_name) overlap or touch.
with

ordered as (
    select
        session_id,
        user_email,
        pod_name,
        node_name,
        session_start,
        lag(session_end) over (
            partition by user_email, pod_name, node_name order by session_start
        ) as previous_session_end
    from {{ ref('user_sessions') }}
)

select *
from ordered
where previous_session_end >= session_start

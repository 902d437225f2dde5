{#- For marts built incrementally from user_sessions: the sessions that changed since this table
    was last built (sessions carry the newest collector run among their observations). An empty
    table (after `dbt run --empty`) takes every session, as a full build does; never both. -#}
{% macro sessions_changed_since_last_run() -%}
    select user_sessions.*
    from {{ ref('user_sessions') }} as user_sessions
    where
        {{ runs_since_last_build('user_sessions.last_collector_run_id') }}
        and exists (select 1 from {{ this }})

    union all

    select user_sessions.*
    from {{ ref('user_sessions') }} as user_sessions
    where not exists (select 1 from {{ this }})
{%- endmacro %}

-- depends_on: {{ source('raw', 'collector_runs') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_sessions',
        meta={'session_key': session_key()},
        on_schema_change='fail',
        indexes=[
            {'columns': ['day']},
            {'columns': session_key_indexed_columns() + ['session_start']},
            {'columns': ['last_collector_run_id']},
        ],
    )
}}

{#- Each session's hours by the UTC calendar day they happened in (docs block calendar_split): daily and
    monthly rollups count an hour in its own day, and a session's days add up to its runtime.
    Incremental like user_sessions: for every session key with a changed session, all of that key's
    sessions from the earliest changed one are split again and replace what was stored from there. -#}

with

{% if is_incremental() %}

changed_sessions as (
    select
        {{ session_key() | join(', ') }},
        min(session_start) as replace_from
    from {{ ref('user_sessions') }}
    where {{ runs_since_last_build('last_collector_run_id') }}
    group by {{ session_key() | join(', ') }}

    union all

    select
        {{ session_key() | join(', ') }},
        min(session_start) as replace_from
    from {{ ref('user_sessions') }}
    where not exists (select from {{ this }})
    group by {{ session_key() | join(', ') }}
),

sessions as (
    select key_sessions.*
    from changed_sessions
    cross join lateral (
        select user_sessions.*
        from {{ ref('user_sessions') }} as user_sessions
        where
            {{ session_key_matches('user_sessions', 'changed_sessions') }}
            and user_sessions.session_start >= changed_sessions.replace_from
        offset 0  -- noqa: AM09
    ) as key_sessions
),

{% else %}

sessions as (
    select * from {{ ref('user_sessions') }}
),

{% endif %}

days as (
    select
        sessions.*,
        day_start::date as day,
        greatest(sessions.session_start, day_start) as part_start,
        least(sessions.session_end, day_start + interval '1 day') as part_end
    from sessions
    cross join lateral generate_series(
        date_trunc('day', sessions.session_start at time zone 'UTC') at time zone 'UTC',
        date_trunc('day', sessions.session_end at time zone 'UTC') at time zone 'UTC',
        interval '1 day'
    ) as day_start
),

hours as (
    select
        session_id,
        {{ session_key() | join(', ') }},
        session_start,
        day,
        node_type,
        (extract(epoch from part_end - part_start) / 3600.0)::double precision as hours,
        -- The session's idle share and requests, spread evenly over its hours.
        case when runtime_hours > 0 then idle_hours / runtime_hours end as idle_share,
        gpu_count,
        cpu_request_cores,
        avg_cpu_usage_cores,
        memory_request_bytes,
        last_collector_run_id
    from days
)

select
    session_id,
    {{ session_key() | join(', ') }},
    session_start,
    day,
    node_type,
    hours,
    case when node_type = 'gpu' then hours else 0 end as gpu_hours,
    case when node_type = 'cpu' then hours else 0 end as cpu_hours,
    gpu_count * hours as gpu_device_hours,
    case when node_type = 'gpu' then idle_share * hours end as idle_gpu_hours,
    cpu_request_cores * hours::numeric as cpu_core_hours,
    avg_cpu_usage_cores * hours::numeric as cpu_used_core_hours,
    memory_request_bytes / 1073741824.0 * hours::numeric as memory_gib_hours,
    last_collector_run_id
from hours

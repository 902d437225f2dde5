-- depends_on: {{ source('raw', 'collector_runs') }}
-- depends_on: {{ ref('int_observations') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_from',
        meta={'replace': {'key': session_key(), 'from': 'session_start'}},
        on_schema_change='fail',
        post_hook="{{ distribute_by_user() }}",
        indexes=[
            {'columns': ['day']},
            {'columns': ['session_id']},
            {'columns': session_key_indexed_columns() + ['session_start']},
            {'columns': ['last_collector_run_id']},
        ],
    )
}}

{#- Each session's hours by the UTC calendar day they happened in (docs block calendar_split): daily and monthly
    rollups count an hour in its own day, and a session's days add up to its runtime. Idle and active time count
    stretch by stretch in the day they happened (int_session_day_parts); requests and the node type are the
    session's. Incremental like user_sessions: for every session key with a changed session, that key's sessions
    from the earliest changed one are joined to their day parts again and replace what was stored from there. -#}

{#- Asked once per model (it is a query): see inlined_on_citus. -#}
{%- set inlined = inlined_on_citus() %}

with

{% if is_incremental() %}

-- The keys new observations fall in, and the earliest of them.
touched_keys as {{ inlined }} (
    select
        {{ session_key() | join(', ') }},
        min(observed_at) as earliest_new_observation
    from ({{ observations_of_new_runs() }}) as new_observations
    group by {{ session_key() | join(', ') }}
),

-- As in user_sessions: a session ending more than the gap before the earliest new observation cannot have
-- changed; the earliest one that can (merged, extended, or split by a new pod uid) is where replacing starts.
changed_keys as {{ inlined }} (
    select
        {%- for column in session_key() %}
        touched_keys.{{ column }},
        {%- endfor %}
        least(
            touched_keys.earliest_new_observation,
            (
                select min(key_sessions.session_start)
                from {{ ref('user_sessions') }} as key_sessions
                where
                    {{ session_key_matches('key_sessions', 'touched_keys') }}
                    and key_sessions.session_end >= touched_keys.earliest_new_observation - {{ session_gap() }}
            )
        ) as replace_from
    from touched_keys
),

sessions as {{ inlined }} (
    select key_sessions.*
    from changed_keys
    cross join lateral (
        select user_sessions.*
        from {{ ref('user_sessions') }} as user_sessions
        where
            {{ session_key_matches('user_sessions', 'changed_keys') }}
            and user_sessions.session_start >= changed_keys.replace_from
        offset 0  -- noqa: AM09
    ) as key_sessions
),

parts as {{ inlined }} (
    select session_parts.*
    from sessions
    cross join lateral (
        select day_parts.*
        from {{ ref('int_session_day_parts') }} as day_parts
        -- The user as well: a session's parts are on its user's worker (spec 3.2).
        where day_parts.user_email = sessions.user_email and day_parts.session_id = sessions.session_id
        offset 0  -- noqa: AM09
    ) as session_parts
),

{% else %}

sessions as {{ inlined }} (
    select * from {{ ref('user_sessions') }}
),

parts as {{ inlined }} (
    select * from {{ ref('int_session_day_parts') }}
),

{% endif %}

days as {{ inlined }} (
    select
        parts.session_id,
        {%- for column in session_key() %}
        parts.{{ column }},
        {%- endfor %}
        parts.session_start,
        parts.day,
        sessions.node_type,
        {{ hours_between('parts.part_start', 'parts.part_end') }} as hours,
        sessions.gpu_count,
        sessions.cpu_request_cores,
        sessions.avg_cpu_usage_cores,
        sessions.memory_request_bytes,
        sessions.measured_observation_count,
        sessions.efficiency_cpu_used_core_hours is not null as efficiency_known,
        sessions.gpu_model,
        sessions.gpu_model_label,
        sessions.gpu_measured_observation_count,
        sessions.avg_gpu_utilization,
        sessions.hub_observation_count,
        parts.active_seconds,
        parts.observation_count,
        parts.idle_seconds,
        parts.gpu_idle_seconds,
        sessions.last_collector_run_id
    from parts
    inner join sessions on parts.user_email = sessions.user_email and parts.session_id = sessions.session_id
)

select
    session_id,
    {{ session_key() | join(', ') }},
    session_start,
    day,
    node_type,
    hours,
    {{ hours_of_node_type('gpu', 'node_type', 'hours') }} as gpu_hours,
    {{ hours_of_node_type('cpu', 'node_type', 'hours') }} as cpu_hours,
    gpu_count * hours as gpu_device_hours,
    {{ measured_hours('idle_seconds', 'measured_observation_count') }} as idle_hours,
    {{ measured_hours('gpu_idle_seconds', 'gpu_measured_observation_count') }} as gpu_idle_hours,
    {{ idle_signal() }} as idle_signal,
    {{ when_gpu('node_type', idle_gpu_hours('idle_seconds', 'gpu_idle_seconds')) }} as idle_gpu_hours,
    gpu_model,
    gpu_model_label,
    {{ when_gpu_measured('avg_gpu_utilization * ' ~ times_hours('gpu_count', 'hours')) }}
        as efficiency_gpu_used_device_hours,
    {{ when_gpu_measured(times_hours('gpu_count', 'hours')) }} as efficiency_gpu_held_device_hours,
    {{ measured_hours('active_seconds', 'hub_observation_count') }} as active_hours,
    {{ times_hours('cpu_request_cores', 'hours') }} as cpu_requested_core_hours,
    {{ times_hours('avg_cpu_usage_cores', 'hours') }} as cpu_used_core_hours,
    case when efficiency_known then {{ times_hours('avg_cpu_usage_cores', 'hours') }} end
        as efficiency_cpu_used_core_hours,
    case when efficiency_known then {{ times_hours('cpu_request_cores', 'hours') }} end
        as efficiency_cpu_requested_core_hours,
    {{ times_hours('memory_request_bytes / 1073741824.0', 'hours') }} as memory_gib_hours,
    observation_count,
    last_collector_run_id
from days

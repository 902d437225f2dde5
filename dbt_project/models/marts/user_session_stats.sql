-- depends_on: {{ source('raw', 'collector_runs') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='user_email',
        on_schema_change='fail',
        post_hook="{{ distribute_by_user() }}",
        indexes=[
            {'columns': ['user_email'], 'unique': True},
            {'columns': ['last_collector_run_id']},
        ],
    )
}}

{#- Incremental: only users whose sessions changed since the last build are recomputed, from all
    of their sessions; the cost follows new data, not history. -#}

{#- Asked once per model (it is a query): see inlined_on_citus. -#}
{%- set inlined = inlined_on_citus() %}

with

{% if is_incremental() %}

changed_sessions as {{ inlined }} (
    {{ sessions_changed_since_last_run() }}
),

touched_users as {{ inlined }} (
    select distinct changed_sessions.user_email from changed_sessions
),

-- LATERAL keeps this a per-user index range scan, whatever the table's size.
sessions as {{ inlined }} (
    select user_history.*
    from touched_users
    cross join lateral (
        select user_sessions.*
        from {{ ref('user_sessions') }} as user_sessions
        where user_sessions.user_email = touched_users.user_email
        -- offset 0 stops the planner from flattening this into one join over the whole table.
        offset 0  -- noqa: AM09
    ) as user_history
),

{% else %}

sessions as {{ inlined }} (
    select * from {{ ref('user_sessions') }}
),

{% endif %}

hours_per_container as {{ inlined }} (
    select
        user_email,
        container_base,
        sum(runtime_hours) as runtime_hours,
        count(*) as sessions
    from sessions
    group by user_email, container_base
),

favorite_containers as {{ inlined }} (
    select
        user_email,
        container_base as favorite_container,
        -- Ties go to the container with more sessions, then to the alphabetically first name.
        row_number() over (
            partition by user_email
            order by runtime_hours desc, sessions desc, container_base asc
        ) as rank_by_hours
    from hours_per_container
),

per_user as {{ inlined }} (
    select
        user_email,
        sum(runtime_hours) as total_hours,
        sum(gpu_hours) as gpu_hours,
        sum(cpu_hours) as cpu_hours,
        sum(gpu_device_hours) as gpu_device_hours,
        sum(idle_gpu_hours) as idle_gpu_hours,
        sum(active_hours) as active_hours,
        percentile_cont(0.5) within group (order by startup_seconds) as median_startup_seconds,
        {{ efficiency('efficiency_cpu_used_core_hours', 'efficiency_cpu_requested_core_hours') }} as cpu_efficiency,
        {{ efficiency('efficiency_gpu_used_device_hours', 'efficiency_gpu_held_device_hours') }} as gpu_efficiency,
        {%- for class in gpu_model_classes() + ['other'] %}
        sum(gpu_hours) filter (where {{ gpu_model_class('gpu_model_label') }} = '{{ class }}') as gpu_hours_{{ class }},
        {%- endfor %}
        count(*) as total_sessions,
        count(distinct container_base) as applications_used,
        min(session_start) as first_session,
        max(session_end) as last_session,
        max(last_collector_run_id) as last_collector_run_id
    from sessions
    group by user_email
)

select
    per_user.user_email,
    per_user.total_hours,
    per_user.gpu_hours,
    per_user.cpu_hours,
    per_user.gpu_device_hours,
    per_user.idle_gpu_hours,
    per_user.active_hours,
    per_user.median_startup_seconds,
    per_user.cpu_efficiency,
    per_user.gpu_efficiency,
    {%- for class in gpu_model_classes() + ['other'] %}
    per_user.gpu_hours_{{ class }},
    {%- endfor %}
    per_user.total_sessions,
    per_user.applications_used,
    per_user.first_session,
    per_user.last_session,
    favorite_containers.favorite_container,
    per_user.last_collector_run_id
from per_user
left join favorite_containers
    on
        per_user.user_email = favorite_containers.user_email
        and favorite_containers.rank_by_hours = 1

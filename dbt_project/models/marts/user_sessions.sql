-- depends_on: {{ source('raw', 'collector_runs') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_sessions',
        meta={'session_key': session_key()},
        on_schema_change='fail',
        indexes=[
            {'columns': ['session_id'], 'unique': True},
            {'columns': session_key() + ['session_start']},
            {'columns': ['last_collector_run_id']},
            {'columns': ['session_start']},
        ],
    )
}}

{#- The session rule: see the session_rule docs block. An incremental run reads only observations
    from collector runs newer than the newest run already in this table, and recomputes the
    sessions they can touch. -#}

{%- set gap = "interval '" ~ var('session_gap_minutes') ~ " minutes'" %}
{%- set key = session_key() | join(', ') %}

with

{% if is_incremental() %}

new_observations as (
    select
        {{ key }},
        observed_at
    from {{ ref('stg_raw__container_observations') }}
    where {{ runs_since_last_build('collector_run_id') }}

    union all

    -- An empty table (after `dbt run --empty`, say) is filled from every observation, as a full build is.
    select
        {{ key }},
        observed_at
    from {{ ref('stg_raw__container_observations') }}
    where not exists (select from {{ this }})
),

touched_keys as (
    select
        {{ key }},
        min(observed_at) as earliest_new_observation
    from new_observations
    group by {{ key }}
),

-- Sessions ending more than the gap before the earliest new observation cannot change; the
-- earliest session that can, starts where recomputation starts. Per key, by index look-up.
recompute_windows as (
    select
        {%- for column in session_key() %}
        touched_keys.{{ column }},
        {%- endfor %}
        least(
            touched_keys.earliest_new_observation,
            (
                select min(previous_sessions.session_start)
                from {{ this }} as previous_sessions
                where
                    {{ session_key_matches('previous_sessions', 'touched_keys') }}
                    and previous_sessions.session_end >= touched_keys.earliest_new_observation - {{ gap }}
            )
        ) as recompute_from
    from touched_keys
),

-- LATERAL keeps this a per-key index range scan, whatever the table's size.
observations as (
    select window_observations.*
    from recompute_windows
    cross join lateral (
        select stg_observations.*
        from {{ ref('stg_raw__container_observations') }} as stg_observations
        where
            {{ session_key_matches('stg_observations', 'recompute_windows') }}
            and stg_observations.observed_at >= recompute_windows.recompute_from
        -- offset 0 stops the planner from flattening this into one join over the whole table.
        offset 0  -- noqa: AM09
    ) as window_observations
),

{% else %}

observations as (
    select * from {{ ref('stg_raw__container_observations') }}
),

{% endif %}

observations_with_previous as (
    select
        *,
        lag(observed_at) over by_pod_and_node as previous_observed_at,
        lag(pod_uid) over by_pod_and_node as previous_pod_uid
    from observations
    window by_pod_and_node as (partition by {{ key }} order by observed_at)
),

session_numbers as (
    select
        *,
        sum(
            case
                when previous_observed_at is null then 1
                when observed_at - previous_observed_at > {{ gap }} then 1
                when pod_uid <> previous_pod_uid then 1
                else 0
            end
        ) over (
            partition by {{ key }}
            order by observed_at
            rows between unbounded preceding and current row
        ) as session_number
    from observations_with_previous
),

sessions as (
    select
        {{ key }},
        min(observed_at) as session_start,
        max(observed_at) as session_end,
        count(*) as observation_count,
        mode() within group (order by container_base) as container_base,
        mode() within group (order by container_version) as container_version,
        (array_agg(pod_uid order by observed_at desc) filter (where pod_uid is not null))[1] as pod_uid,
        (array_agg(server_name order by observed_at desc))[1] as server_name,
        (array_agg(user_name order by observed_at desc) filter (where user_name is not null))[1] as user_name,
        max(gpu_count) as gpu_count,
        max(collector_run_id) as last_collector_run_id
    from session_numbers
    group by {{ key }}, session_number
),

final as (
    select
        md5(
            concat_ws(
                '|',
                user_email,
                pod_name,
                node_name,
                to_char(session_start at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                -- concat_ws skips nulls: sessions from before adoption keep the ids they had.
                'cluster=' || cluster,
                'namespace=' || namespace
            )
        ) as session_id,
        user_email,
        user_name,
        pod_name,
        server_name,
        node_name,
        {{ node_type('node_name') }} as node_type,
        cluster,
        namespace,
        pod_uid,
        session_start,
        session_end,
        (extract(epoch from session_end - session_start) / 3600.0)::double precision as runtime_hours,
        container_base,
        container_version,
        gpu_count,
        observation_count,
        last_collector_run_id
    from sessions
)

select
    *,
    case when node_type = 'gpu' then runtime_hours else 0 end as gpu_hours,
    case when node_type = 'cpu' then runtime_hours else 0 end as cpu_hours,
    gpu_count * runtime_hours as gpu_device_hours
from final

-- depends_on: {{ source('raw', 'collector_runs') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_sessions',
        meta={'session_key': session_key()},
        on_schema_change='fail',
        indexes=[
            {'columns': ['session_id'], 'unique': True},
            {'columns': session_key_indexed_columns() + ['session_start']},
            {'columns': ['last_collector_run_id']},
            {'columns': ['session_start']},
        ],
    )
}}

{#- The session rule: see the session_rule docs block. An incremental run reads only observations
    from collector runs newer than the newest run already in this table (see incremental_sessions).
    Where the new observations of a key only extend its open session, that session is updated
    from its stored row; every other touched key is recomputed exactly from where a session
    boundary is certain. -#}

{%- set gap = "interval '" ~ var('session_gap_minutes') ~ " minutes'" %}
{%- set idle_below = var('idle_cpu_cores') | float %}
{%- set key = session_key() | join(', ') %}
{%- set session_columns %}
        session_start,
        session_end,
        observation_count,
        container_base,
        container_version,
        pod_uid,
        server_name,
        user_name,
        gpu_count,
        cpu_request_cores,
        memory_request_bytes,
        measured_observation_count,
        cpu_usage_cores_sum,
        max_memory_usage_bytes,
        last_cpu_usage_cores,
        idle_seconds,
        last_collector_run_id
{%- endset %}

with

{% if is_incremental() %}

new_observations as (
    select *
    from {{ ref('stg_raw__container_observations') }}
    where
        {{ runs_since_last_build('collector_run_id') }}
        and observed_at >= {{ earliest_observation_of_new_runs() }}

    union all

    -- An empty table (after `dbt run --empty`, say) is filled from every observation, as a full build is.
    select *
    from {{ ref('stg_raw__container_observations') }}
    where not exists (select from {{ this }})
),

new_steps as (
    select
        *,
        observed_at - lag(observed_at) over new_in_order as step,
        lag(cpu_usage_cores) over new_in_order as previous_cpu_usage_cores
    from new_observations
    window new_in_order as (partition by {{ key }} order by observed_at)
),

-- What a key's new observations would add to its open session, summed up without its history.
touched_keys as (
    select
        {{ key }},
        min(observed_at) as earliest_new_observation,
        max(observed_at) as latest_new_observation,
        coalesce(max(step), interval '0') as longest_new_step,
        count(*) as new_observation_count,
        count(distinct container_base) as new_bases,
        min(container_base) as new_base,
        count(distinct container_version) as new_versions,
        min(container_version) as new_version,
        count(distinct pod_uid) as new_uids,
        (array_agg(pod_uid order by observed_at desc) filter (where pod_uid is not null))[1] as last_pod_uid,
        (array_agg(server_name order by observed_at desc))[1] as last_server_name,
        (array_agg(user_name order by observed_at desc) filter (where user_name is not null))[1] as last_user_name,
        max(gpu_count) as max_gpu_count,
        max(cpu_request_cores) as max_cpu_request_cores,
        max(memory_request_bytes) as max_memory_request_bytes,
        count(cpu_usage_cores) as new_measured_observations,
        sum(cpu_usage_cores) as new_cpu_usage_cores_sum,
        max(memory_usage_bytes) as new_max_memory_usage_bytes,
        (array_agg(cpu_usage_cores order by observed_at))[1] as first_cpu_usage_cores,
        (array_agg(cpu_usage_cores order by observed_at desc))[1] as last_cpu_usage_cores,
        sum({{ idle_seconds('step', 'previous_cpu_usage_cores', 'cpu_usage_cores', idle_below) }}) as new_idle_seconds,
        max(collector_run_id) as last_collector_run_id
    from new_steps
    group by {{ key }}
),

-- Each touched key's latest stored session, by index look-up.
open_sessions as (
    select
        touched_keys.*,
        latest.session_start as open_start,
        latest.session_end as open_end,
        latest.observation_count as open_observation_count,
        latest.container_base as open_base,
        latest.container_version as open_version,
        latest.pod_uid as open_pod_uid,
        latest.user_name as open_user_name,
        latest.gpu_count as open_gpu_count,
        latest.cpu_request_cores as open_cpu_request_cores,
        latest.memory_request_bytes as open_memory_request_bytes,
        latest.measured_observation_count as open_measured_observations,
        latest.cpu_usage_cores_sum as open_cpu_usage_cores_sum,
        latest.max_memory_usage_bytes as open_max_memory_usage_bytes,
        latest.last_cpu_usage_cores as open_last_cpu_usage_cores,
        latest.idle_seconds as open_idle_seconds
    from touched_keys
    left join lateral (
        select previous_sessions.*
        from {{ this }} as previous_sessions
        where {{ session_key_matches('previous_sessions', 'touched_keys') }}
        order by previous_sessions.session_start desc
        limit 1
    ) as latest on true
),

-- The common case: every new observation comes after the open session's end, within the gap of
-- its predecessor, with the session's image and pod uid. Then no boundary can appear, the
-- session's most frequent image stays the most frequent, and its row is updated from what is
-- stored. Anything else (late or out-of-order observations, a uid or image change, a new
-- session) is recomputed exactly below.
extended_sessions as (
    select
        {{ key }},
        open_start as session_start,
        latest_new_observation as session_end,
        open_observation_count + new_observation_count as observation_count,
        open_base as container_base,
        open_version as container_version,
        coalesce(last_pod_uid, open_pod_uid) as pod_uid,
        last_server_name as server_name,
        coalesce(last_user_name, open_user_name) as user_name,
        greatest(open_gpu_count, max_gpu_count) as gpu_count,
        greatest(open_cpu_request_cores, max_cpu_request_cores) as cpu_request_cores,
        greatest(open_memory_request_bytes, max_memory_request_bytes) as memory_request_bytes,
        open_measured_observations + new_measured_observations as measured_observation_count,
        {{ sum_of_known('open_cpu_usage_cores_sum', 'new_cpu_usage_cores_sum') }} as cpu_usage_cores_sum,
        greatest(open_max_memory_usage_bytes, new_max_memory_usage_bytes) as max_memory_usage_bytes,
        last_cpu_usage_cores,
        {{ sum_of_known(
            'open_idle_seconds',
            'new_idle_seconds',
            idle_seconds(
                'earliest_new_observation - open_end', 'open_last_cpu_usage_cores', 'first_cpu_usage_cores', idle_below
            ),
        ) }} as idle_seconds,
        last_collector_run_id
    from open_sessions
    where
        earliest_new_observation > open_end
        and earliest_new_observation - open_end <= {{ gap }}
        and longest_new_step <= {{ gap }}
        and new_bases = 1 and new_base = open_base
        and new_versions = 1 and new_version = open_version
        and (new_uids = 0 or (new_uids = 1 and (open_pod_uid is null or open_pod_uid = last_pod_uid)))
),

-- Sessions ending more than the gap before the earliest new observation cannot change; the
-- earliest session that can, starts where recomputation starts. Per key, by index look-up.
recompute_windows as (
    select
        {%- for column in session_key() %}
        open_sessions.{{ column }},
        {%- endfor %}
        least(
            open_sessions.earliest_new_observation,
            (
                select min(previous_sessions.session_start)
                from {{ this }} as previous_sessions
                where
                    {{ session_key_matches('previous_sessions', 'open_sessions') }}
                    and previous_sessions.session_end >= open_sessions.earliest_new_observation - {{ gap }}
            )
        ) as recompute_from
    from open_sessions
    where not exists (
        select from extended_sessions
        where {{ session_key_matches('extended_sessions', 'open_sessions') }}
    )
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
        lag(pod_uid) over by_pod_and_node as previous_pod_uid,
        lag(cpu_usage_cores) over by_pod_and_node as previous_cpu_usage_cores
    from observations
    window by_pod_and_node as (partition by {{ key }} order by observed_at)
),

session_starts as (
    select
        *,
        case
            when previous_observed_at is null then 1
            when observed_at - previous_observed_at > {{ gap }} then 1
            when pod_uid <> previous_pod_uid then 1
            else 0
        end as session_start_marker
    from observations_with_previous
),

session_numbers as (
    select
        *,
        sum(session_start_marker) over (
            partition by {{ key }}
            order by observed_at
            rows between unbounded preceding and current row
        ) as session_number
    from session_starts
),

recomputed_sessions as (
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
        max(cpu_request_cores) as cpu_request_cores,
        max(memory_request_bytes) as memory_request_bytes,
        count(cpu_usage_cores) as measured_observation_count,
        sum(cpu_usage_cores) as cpu_usage_cores_sum,
        max(memory_usage_bytes) as max_memory_usage_bytes,
        (array_agg(cpu_usage_cores order by observed_at desc))[1] as last_cpu_usage_cores,
        -- The first observation of a session opens no stretch (its predecessor, if any, is another session's).
        sum(
            case
                when session_start_marker = 0
                    then {{ idle_seconds(
                        'observed_at - previous_observed_at', 'previous_cpu_usage_cores', 'cpu_usage_cores', idle_below
                    ) }}
            end
        ) as idle_seconds,
        max(collector_run_id) as last_collector_run_id
    from session_numbers
    group by {{ key }}, session_number
),

sessions as (
    select
        {{ key }},
        {{- session_columns }}
    from recomputed_sessions
    {%- if is_incremental() %}

    union all

    select
        {{ key }},
        {{- session_columns }}
    from extended_sessions
    {%- endif %}
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
        {{ gpu_or_cpu('gpu_count', 'node_name') }} as node_type,
        cluster,
        namespace,
        pod_uid,
        session_start,
        session_end,
        (extract(epoch from session_end - session_start) / 3600.0)::double precision as runtime_hours,
        container_base,
        container_version,
        gpu_count,
        cpu_request_cores,
        memory_request_bytes,
        observation_count,
        measured_observation_count,
        cpu_usage_cores_sum,
        cpu_usage_cores_sum / nullif(measured_observation_count, 0) as avg_cpu_usage_cores,
        max_memory_usage_bytes,
        last_cpu_usage_cores,
        idle_seconds,
        -- Null where use was never measured (spec 4).
        case when measured_observation_count > 0 then coalesce(idle_seconds, 0) / 3600.0 end as idle_hours,
        last_collector_run_id
    from sessions
)

select
    *,
    case when node_type = 'gpu' then runtime_hours else 0 end as gpu_hours,
    case when node_type = 'cpu' then runtime_hours else 0 end as cpu_hours,
    gpu_count * runtime_hours as gpu_device_hours
from final

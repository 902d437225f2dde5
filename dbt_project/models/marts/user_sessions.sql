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
            {'columns': ['session_id', 'user_email'], 'unique': True},
            {'columns': session_key_indexed_columns() + ['session_start']},
            {'columns': ['last_collector_run_id']},
            {'columns': ['session_start']},
        ],
    )
}}

{#- The session rule: see the session_rule docs block; every column is declared in session_columns() (the lists of
    generated columns carry `noqa: LT02`: their layout is the macros', not this file's). An
    incremental run reads only observations from collector runs newer than the newest run already in this table.
    Where the new observations of a key only extend its open session, that session is updated from its stored
    row; every other touched key is recomputed exactly from where a session boundary is certain. -#}

{%- set key = session_key() | join(', ') %}
{%- set stored = stored_session_columns() %}
{%- set junction = 'earliest_new_observation - open_session_end' %}

{#- Asked once per model (it is a query): see inlined_on_citus. -#}
{%- set inlined = inlined_on_citus() %}

with

{% if is_incremental() %}

new_observations as {{ inlined }} (
    {{ observations_of_new_runs() }}
),

new_steps as {{ inlined }} (
    select
        *,
        lag(observed_at) over new_in_order as previous_observed_at,
        {%- for input in stretch_inputs() %}
        lag({{ input }}) over new_in_order as previous_{{ input }},
        {%- endfor %}
        observed_at - lag(observed_at) over new_in_order as step
    from new_observations
    window new_in_order as (partition by {{ key }} order by observed_at)
),

-- What a key's new observations would add to its open session, summed up without its history.
touched_keys as {{ inlined }} (
    select
        {{ key }},
        min(observed_at) as earliest_new_observation,
        max(observed_at) as latest_new_observation,
        coalesce(max(step), interval '0') as longest_new_step,
        {%- for column in stored %}
        {{ session_aggregate(column, 'new') }} as new_{{ column.name }},
        {%- if must_agree(column) %}
        count(distinct {{ column.of }}) as new_{{ column.name }}_values,
        {%- endif %}
        {%- endfor %}
        {%- for input in stretch_inputs() %}
        (array_agg({{ input }} order by observed_at))[1] as first_{{ input }},
        {%- endfor %}
        count(*) as new_observations
    from new_steps
    group by {{ key }}
),

-- Each touched key's latest stored session, by index look-up.
open_sessions as {{ inlined }} (
    select
        touched_keys.*,
        {%- for column in stored %}
        latest.{{ column.name }} as open_{{ column.name }},
        {%- endfor %}
        latest.session_start as open_session_start,
        latest.session_end as open_session_end
    from touched_keys
    left join lateral (
        select previous_sessions.*
        from {{ this }} as previous_sessions
        where {{ session_key_matches('previous_sessions', 'touched_keys') }}
        order by previous_sessions.session_start desc
        limit 1
    ) as latest on true
),

-- The common case: every new observation comes after the open session's end, within the gap of its
-- predecessor, agreeing with the session's image and pod uid. Then no boundary can appear, the session's most
-- frequent image stays the most frequent, and its row is updated from what is stored. Anything else (late or
-- out-of-order observations, a uid or image change, a new session) is recomputed exactly below.
extended_sessions as {{ inlined }} (
    select
        {{ key }},
        open_session_start as session_start,
        latest_new_observation as session_end,
        -- noqa: disable=LT02
        {%- for column in stored %}
        {{ session_merge(column, junction) }} as {{ column.name }}{{ ',' if not loop.last }}
        {%- endfor %}
    -- noqa: enable=LT02
    from open_sessions
    where
        earliest_new_observation > open_session_end
        and earliest_new_observation - open_session_end <= {{ session_gap() }}
        and longest_new_step <= {{ session_gap() }}
        {%- for column in stored if must_agree(column) %}
        and {{ new_values_agree(column) }}
        {%- endfor %}
),

-- Sessions ending more than the gap before the earliest new observation cannot change; the earliest session
-- that can, starts where recomputation starts. Per key, by index look-up.
recompute_windows as {{ inlined }} (
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
                    and previous_sessions.session_end >= open_sessions.earliest_new_observation - {{ session_gap() }}
            )
        ) as recompute_from
    from open_sessions
    where not exists (
        select 1 from extended_sessions
        where {{ session_key_matches('extended_sessions', 'open_sessions') }}
    )
),

-- LATERAL keeps this a per-key index range scan, whatever the table's size.
observations as {{ inlined }} (
    select window_observations.*
    from recompute_windows
    cross join lateral (
        select stg_observations.*
        from {{ ref('int_observations') }} as stg_observations
        where
            {{ session_key_matches('stg_observations', 'recompute_windows') }}
            and stg_observations.observed_at >= recompute_windows.recompute_from
        -- offset 0 stops the planner from flattening this into one join over the whole table.
        offset 0  -- noqa: AM09
    ) as window_observations
),

{% else %}

observations as {{ inlined }} (
    select * from {{ ref('int_observations') }}
),

{% endif %}

observations_with_previous as {{ inlined }} (
    select
        *,
        lag(observed_at) over by_key as previous_observed_at,
        {%- for input in stretch_inputs() %}
        lag({{ input }}) over by_key as previous_{{ input }},
        {%- endfor %}
        lag(pod_uid) over by_key as previous_pod_uid
    from observations
    window by_key as (partition by {{ key }} order by observed_at)
),

session_starts as {{ inlined }} (
    select
        *,
        {{ starts_a_session('observed_at - previous_observed_at', 'pod_uid', 'previous_pod_uid') }}
            as session_start_marker
    from observations_with_previous
),

session_numbers as {{ inlined }} (
    select
        *,
        sum(session_start_marker) over (
            partition by {{ key }}
            order by observed_at
            rows between unbounded preceding and current row
        ) as session_number
    from session_starts
),

recomputed_sessions as {{ inlined }} (
    select
        {{ key }},
        min(observed_at) as session_start,
        max(observed_at) as session_end,
        -- noqa: disable=LT02
        {%- for column in stored %}
        {{ session_aggregate(column, 'recompute') }} as {{ column.name }}{{ ',' if not loop.last }}
        {%- endfor %}
    -- noqa: enable=LT02
    from session_numbers
    group by {{ key }}, session_number
),

sessions as {{ inlined }} (
    select * from recomputed_sessions
    {%- if is_incremental() %}

    union all

    select * from extended_sessions
    {%- endif %}
),

final as {{ inlined }} (
    select
        {{ session_id() }} as session_id,
        {{ key }},
        session_start,
        session_end,
        -- noqa: disable=LT02
        {%- for column in session_columns() %}
        {{ column.sql if column.kind == 'derived' else column.name }} as {{ column.name }},
        {%- endfor %}
        {%- for input in stretch_inputs() %}
        last_{{ input }}{{ ',' if not loop.last }}
        {%- endfor %}
    -- noqa: enable=LT02
    from sessions
)

select * from final

-- depends_on: {{ source('raw', 'collector_runs') }}
-- depends_on: {{ ref('int_observations') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_from',
        meta={'replace': {'key': session_key(), 'from': 'day'}},
        on_schema_change='fail',
        post_hook="{{ distribute_by_user() }}",
        indexes=[
            {'columns': ['session_id']},
            {'columns': ['day']},
            {'columns': session_key_indexed_columns() + ['day']},
            {'columns': ['last_collector_run_id']},
        ],
    )
}}

{#- Each session's part of each UTC day (docs block calendar_split), from the observations themselves: the part's
    first and last moment, and every stretch column of session_columns() counted stretch by stretch, a stretch
    across midnight split at midnight. So idle (and any stretch) time counts in the day it happened, exactly.

    A piece is an observation (a point on its day) or a stretch between two consecutive observations of a session
    (cut at UTC midnight). A day part sums its session's pieces of that day. New observations of a key only ever
    change its pieces from the day of the observation before the earliest new one: earlier parts keep their session
    (its start cannot move later) and their pieces. Incremental runs replace, per key, the parts from that day on:
      - appending keys (every new observation after the last one stored, the 5-minute case): the stored parts of
        the last stored observation's day plus the new pieces (the first from that observation), read from the new
        observations and one stored observation only;
      - other keys (late rows): recomputed from every observation of the key from that day on. -#}

{%- set key = session_key() | join(', ') %}
{%- set stretches = stretch_columns() %}
{%- set part_length = "least(observed_at, day_start + interval '1 day') - greatest(previous_observed_at, day_start)" %}

{#- Asked once per model (it is a query): see inlined_on_citus. -#}
{%- set inlined = inlined_on_citus() %}

with

{% if is_incremental() %}

new_observations as {{ inlined }} (
    {{ observations_of_new_runs() }}
),

touched_keys as {{ inlined }} (
    select
        {{ key }},
        min(observed_at) as earliest_new_observation
    from new_observations
    group by {{ key }}
),

-- The key's last stored part: its part_end is the last stored observation.
tails as {{ inlined }} (
    select
        touched_keys.*,
        tail.day as tail_day,
        tail.part_end as last_stored_observation,
        tail.session_start as tail_session_start
    from touched_keys
    left join lateral (
        select
            stored_parts.day,
            stored_parts.part_end,
            stored_parts.session_start
        from {{ this }} as stored_parts
        where {{ session_key_matches('stored_parts', 'touched_keys') }}
        order by stored_parts.day desc, stored_parts.part_end desc
        limit 1
    ) as tail on true
),

-- Appending keys continue from their last stored observation; its day's parts are replaced.
appending_keys as {{ inlined }} (
    select
        {{ key }},
        last_stored_observation as anchor_at,
        tail_session_start as anchor_session_start,
        tail_day::timestamp at time zone 'UTC' as replace_from
    from tails
    where last_stored_observation < earliest_new_observation
),

-- Other keys: the parts from the day of the observation before the earliest new one (or of the earliest new one)
-- are replaced; the last observation before that day opens the first stretch. Both look-ups into the observations
-- are bounded below by the stored parts (searched_from), so that on TimescaleDB they read only the chunks those
-- observations are in; a key with no stored part (a new pod) has no earlier observation and looks up nothing.
-- A stored observation lies in a part that starts at or before it, and a part starts at an observation or at a
-- midnight that cuts a stretch, which begins at most one session gap earlier.
late_keys as {{ inlined }} (
    select
        {%- for column in session_key() %}
        tails.{{ column }},
        {%- endfor %}
        {{ utc_day('coalesce(predecessor.observed_at, tails.earliest_new_observation)') }} as replace_from
    from tails
    left join lateral (
        select stored_parts.part_start - {{ session_gap() }} as searched_from
        from {{ this }} as stored_parts
        where
            {{ session_key_matches('stored_parts', 'tails') }}
            and stored_parts.part_start < tails.earliest_new_observation
        order by stored_parts.part_start desc
        limit 1
    ) as predecessor_part on true
    left join lateral (
        select before_new.observed_at
        from {{ ref('int_observations') }} as before_new
        where
            {{ session_key_matches('before_new', 'tails') }}
            and before_new.observed_at < tails.earliest_new_observation
            -- A condition on the outer row alone: evaluated before any chunk is read.
            and predecessor_part.searched_from is not null
            and before_new.observed_at >= predecessor_part.searched_from
        order by before_new.observed_at desc
        limit 1
    ) as predecessor on true
    where tails.last_stored_observation is null or tails.last_stored_observation >= tails.earliest_new_observation
),

late_anchors as {{ inlined }} (
    select
        late_keys.*,
        anchor.observed_at as anchor_at,
        anchor_part.session_start as anchor_session_start
    from late_keys
    left join lateral (
        select stored_parts.part_start - {{ session_gap() }} as searched_from
        from {{ this }} as stored_parts
        where
            {{ session_key_matches('stored_parts', 'late_keys') }}
            and stored_parts.day < (late_keys.replace_from at time zone 'UTC')::date
        order by stored_parts.day desc, stored_parts.part_start desc
        limit 1
    ) as anchor_day_part on true
    left join lateral (
        select before_day.observed_at
        from {{ ref('int_observations') }} as before_day
        where
            {{ session_key_matches('before_day', 'late_keys') }}
            and before_day.observed_at < late_keys.replace_from
            -- A condition on the outer row alone: evaluated before any chunk is read.
            and anchor_day_part.searched_from is not null
            and before_day.observed_at >= anchor_day_part.searched_from
        order by before_day.observed_at desc
        limit 1
    ) as anchor on true
    -- The anchor's session, from its stored part (a day before the replaced ones).
    left join lateral (
        select stored_parts.session_start
        from {{ this }} as stored_parts
        where
            {{ session_key_matches('stored_parts', 'late_keys') }}
            and stored_parts.day = ({{ utc_day('anchor.observed_at') }})::date
            and anchor.observed_at between stored_parts.part_start and stored_parts.part_end
        order by stored_parts.part_start
        limit 1
    ) as anchor_part on true
),

anchors as {{ inlined }} (
    select {{ key }}, anchor_at, anchor_session_start, replace_from from appending_keys
    union all
    select {{ key }}, anchor_at, anchor_session_start, replace_from from late_anchors
),

-- Each key's anchor observation: it opens the first stretch; its own point lies in a part that is kept. An index
-- look-up per key, whatever the history.
anchor_observations as {{ inlined }} (
    select
        anchor_observation.*,
        true as is_anchor,
        anchors.anchor_session_start,
        anchors.replace_from
    from anchors
    cross join lateral (
        select anchor_at_observation.*
        from {{ ref('int_observations') }} as anchor_at_observation
        where
            {{ session_key_matches('anchor_at_observation', 'anchors') }}
            and anchor_at_observation.observed_at = anchors.anchor_at
        offset 0  -- noqa: AM09
    ) as anchor_observation
),

stream as {{ inlined }} (
    select * from anchor_observations

    union all

    -- Appending keys: the new observations.
    select
        new_observations.*,
        false as is_anchor,
        appending_keys.anchor_session_start,
        appending_keys.replace_from
    from new_observations
    inner join appending_keys on {{ session_key_matches('new_observations', 'appending_keys') }}

    union all

    -- Late keys: every observation of the replaced days, stored or new.
    select
        day_observations.*,
        false as is_anchor,
        late_anchors.anchor_session_start,
        late_anchors.replace_from
    from late_anchors
    cross join lateral (
        select stg_observations.*
        from {{ ref('int_observations') }} as stg_observations
        where
            {{ session_key_matches('stg_observations', 'late_anchors') }}
            and stg_observations.observed_at >= late_anchors.replace_from
        offset 0  -- noqa: AM09
    ) as day_observations
),

{% else %}

stream as {{ inlined }} (
    select
        *,
        false as is_anchor,
        null::timestamptz as anchor_session_start,
        '-infinity'::timestamptz as replace_from
    from {{ ref('int_observations') }}
),

{% endif %}

steps as {{ inlined }} (
    select
        *,
        lag(observed_at) over by_key as previous_observed_at,
        {%- for input in stretch_inputs() %}
        lag({{ input }}) over by_key as previous_{{ input }},
        {%- endfor %}
        lag(pod_uid) over by_key as previous_pod_uid
    from stream
    window by_key as (partition by {{ key }} order by observed_at)
),

marked as {{ inlined }} (
    select
        *,
        case
            when is_anchor then 0
            else {{ starts_a_session('observed_at - previous_observed_at', 'pod_uid', 'previous_pod_uid') }}
        end as session_start_marker
    from steps
),

numbered as {{ inlined }} (
    select
        *,
        sum(session_start_marker) over (
            partition by {{ key }}
            order by observed_at
            rows between unbounded preceding and current row
        ) as session_number
    from marked
),

sessioned as {{ inlined }} (
    select
        *,
        {{ utc_day('previous_observed_at') }} as previous_day_start,
        {{ utc_day('observed_at') }} as day_start_of_observation,
        case
            when session_number = 0 then anchor_session_start
            else min(observed_at) over (partition by {{ key }}, session_number)
        end as session_start
    from numbered
),

pieces as {{ inlined }} (
    -- Each observation: a point on its day (the anchor's is in a part that is kept).
    select
        {{ key }},
        session_start,
        ({{ utc_day('observed_at') }})::date as day,
        observed_at as part_start,
        observed_at as part_end,
        1 as observation_count,
        {%- for column in stretches %}
        null::numeric as {{ column.name }},
        {%- endfor %}
        collector_run_id
    from sessioned
    where not is_anchor

    union all

    -- Each stretch within a session, cut at UTC midnight.
    select
        {{ key }},
        session_start,
        day_start::date as day,
        greatest(previous_observed_at, day_start) as part_start,
        least(observed_at, day_start + interval '1 day') as part_end,
        0 as observation_count,
        {%- for column in stretches %}
        {%- set input = stretch_rules()[column.rule].input %}
        {{ stretch_seconds(column.rule, 'previous_' ~ input, input, part_length) }} as {{ column.name }},
        {%- endfor %}
        collector_run_id
    -- The days a stretch touches come from a set-returning function in a subquery's select list, not in FROM:
    -- Citus runs that on the workers, but gathers on the coordinator whatever a function in FROM joins (spec 3.2).
    from (
        select
            sessioned.*,
            generate_series(sessioned.previous_day_start, sessioned.day_start_of_observation, interval '1 day')
                as day_start
        from sessioned
        where
            sessioned.session_start_marker = 0
            and not sessioned.is_anchor
    ) as stretch_days
    where day_start >= replace_from
),

new_parts as {{ inlined }} (
    select
        {{ key }},
        session_start,
        day,
        min(part_start) as part_start,
        max(part_end) as part_end,
        sum(observation_count) as observation_count,
        {%- for column in stretches %}
        sum({{ column.name }}) as {{ column.name }},
        {%- endfor %}
        max(collector_run_id) as last_collector_run_id
    from pieces
    group by {{ key }}, session_start, day
),

{% if is_incremental() %}

-- Appending keys: the stored parts of the last stored observation's day, with the new pieces added.
stored_tail_parts as {{ inlined }} (
    select tail_parts.*
    from appending_keys
    cross join lateral (
        select stored_parts.*
        from {{ this }} as stored_parts
        where
            {{ session_key_matches('stored_parts', 'appending_keys') }}
            and stored_parts.day = (appending_keys.replace_from at time zone 'UTC')::date
        offset 0  -- noqa: AM09
    ) as tail_parts
),

parts as {{ inlined }} (
    select
        {%- for column in session_key() %}
        coalesce(new_parts.{{ column }}, stored_tail_parts.{{ column }}) as {{ column }},
        {%- endfor %}
        coalesce(new_parts.session_start, stored_tail_parts.session_start) as session_start,
        coalesce(new_parts.day, stored_tail_parts.day) as day,
        least(new_parts.part_start, stored_tail_parts.part_start) as part_start,
        greatest(new_parts.part_end, stored_tail_parts.part_end) as part_end,
        coalesce(new_parts.observation_count, 0) + coalesce(stored_tail_parts.observation_count, 0)
            as observation_count,
        {%- for column in stretches %}
        {{ sum_of_known('new_parts.' ~ column.name, 'stored_tail_parts.' ~ column.name) }} as {{ column.name }},
        {%- endfor %}
        greatest(new_parts.last_collector_run_id, stored_tail_parts.last_collector_run_id) as last_collector_run_id
    from new_parts
    full outer join stored_tail_parts
        on
            {{ session_key_matches('new_parts', 'stored_tail_parts') }}
            and new_parts.session_start = stored_tail_parts.session_start
            and new_parts.day = stored_tail_parts.day
),

{% else %}

parts as {{ inlined }} (
    select * from new_parts
),

{% endif %}

final as {{ inlined }} (
    select
        {{ session_id() }} as session_id,
        {{ key }},
        session_start,
        day,
        part_start,
        part_end,
        observation_count,
        {%- for column in stretches %}
        {{ column.name }},
        {%- endfor %}
        last_collector_run_id
    from parts
)

select * from final

-- depends_on: {{ source('raw', 'collector_runs') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_from',
        meta={'replace': {'key': storage_volume_key(), 'from': 'storage_day'}},
        on_schema_change='fail',
        indexes=[
            {'columns': ['storage_day']},
            {'columns': ['volume_name', 'layout', 'storage_day']},
            {'columns': ['owner_name']},
            {'columns': ['last_collector_run_id']},
        ],
    )
}}

{#- The figures a day without a reading of them carries from the last one that had it, with their types. -#}
{%- set carried_figures = {
    'used_bytes': 'bigint', 'capacity_bytes': 'bigint', 'quota_bytes': 'bigint', 'file_count': 'bigint',
    'last_modified_at': 'timestamptz',
} %}

{#- Every volume on every day from its first row to its latest (docs block storage_rule): a day without a row (no
    collection read it), or a row without a figure (kubelet reports a PVC only while a pod mounts it), has the last
    known figure. Owners: the email the row gives, else the one user whose pods showed its name (never guessed).
    Incremental: each volume with new rows is recomputed from the earlier of its first new row and its last stored
    day (whose row covers the days until the next), starting from its stored figures of the day before; a volume an owner may have newly matched
    (its name newly shown, while it had no owner or the name now fits several) from its first day. -#}

with

observations as (
    select * from {{ ref('stg_raw__storage_observations') }}
),

names_seen as (
    select * from {{ ref('stg_raw__hub_names_seen') }}
),

-- Each name the hub or its pods showed (escaped or not) with its user, where exactly one user showed it.
name_owners as (
    select
        shown_name,
        case when count(distinct user_email) = 1 then min(user_email) end as user_email
    from (
        select
            escaped_name as shown_name,
            user_email
        from names_seen
        union
        select
            hub_user_name as shown_name,
            user_email
        from names_seen
    ) as shown
    group by shown_name
),

{% if is_incremental() %}

new_rows as (
    select
        {{ storage_volume_key() | join(', ') }},
        min(storage_day) as first_new_day
    from observations
    where {{ runs_since_last_build('collector_run_id') }}
    group by {{ storage_volume_key() | join(', ') }}
),

new_names as (
    select escaped_name as shown_name from names_seen
    where {{ runs_since_last_build('collector_run_id') }}
    union
    select hub_user_name as shown_name from names_seen
    where {{ runs_since_last_build('collector_run_id') }}
),

rematched_volumes as (
    select distinct
        {%- for column in storage_volume_key() %}
        built.{{ column }},
        {%- endfor %}
        '-infinity'::date as first_new_day
    from {{ this }} as built
    inner join new_names on built.owner_name = new_names.shown_name
    left join name_owners on new_names.shown_name = name_owners.shown_name
    where built.user_email is null or name_owners.user_email is null
),

changed_volumes as (
    select
        {{ storage_volume_key() | join(', ') }},
        min(first_new_day) as first_new_day
    from (
        select * from new_rows
        union all
        select * from rematched_volumes
    ) as changed
    group by {{ storage_volume_key() | join(', ') }}
),

windows as (
    select
        changed_volumes.*,
        -- From the volume's last stored day (its latest row, which covers the days until a new one), or from its
        -- earliest new row where that is earlier; a rematched volume from its first row (null).
        case
            when changed_volumes.first_new_day > '-infinity'::date
                then least(changed_volumes.first_new_day, built_days.last_day)
        end as from_day
    from changed_volumes
    cross join lateral (
        select max(built.storage_day) as last_day
        from {{ this }} as built
        where {{ session_key_matches('built', 'changed_volumes', storage_volume_key()) }}
    ) as built_days
),

window_rows as (
    select volume_rows.*
    from windows
    cross join lateral (
        select observations.*
        from observations
        where
            {{ session_key_matches('observations', 'windows', storage_volume_key()) }}
            and (windows.from_day is null or observations.storage_day >= windows.from_day)
        offset 0  -- noqa: AM09
    ) as volume_rows
),

-- The stored figures of the day before each window: where its carried figures start.
carried_in as (
    select built.*
    from windows
    inner join {{ this }} as built
        on
            {{ session_key_matches('built', 'windows', storage_volume_key()) }}
            and built.storage_day = windows.from_day - 1
),

{% else %}

window_rows as (
    select * from observations
),

carried_in as (
    select
        {%- for column in storage_volume_key() %}
        null::text as {{ column }},
        {%- endfor %}
    {%- for figure, type in carried_figures.items() %}
    null::{{ type }} as {{ figure }}{{ ',' if not loop.last }}
    {%- endfor %}
    where false
),

{% endif %}

-- Each row with its owner, and the count of figures known up to it: the rows that share a count carry its figure.
numbered_rows as (
    select
        window_rows.*,
        coalesce(window_rows.user_email, name_owners.user_email) as owner_email,
        {%- for figure in carried_figures %}
        count(window_rows.{{ figure }}) over volume_days as {{ figure }}_known,
        {%- endfor %}
        lead(window_rows.storage_day) over volume_days as next_row_day
    from window_rows
    left join name_owners on window_rows.owner_name = name_owners.shown_name
    window volume_days as (
        partition by {{ storage_volume_key() | join(', ') }}
        order by window_rows.storage_day
    )
),

carried_rows as (
    select
        {%- for figure in carried_figures %}
        max(numbered_rows.{{ figure }})
            over (partition by {{ storage_volume_key() | join(', ') }}, numbered_rows.{{ figure }}_known)
            as {{ figure }}_carried,
        {%- endfor %}
        numbered_rows.*
    from numbered_rows
),

-- A row stands for its own day and every day until the next row.
volume_days as (
    select
        carried_rows.*,
        (covered.day)::date as covered_day
    from carried_rows
    cross join lateral generate_series(
        carried_rows.storage_day,
        coalesce(carried_rows.next_row_day - 1, carried_rows.storage_day),
        interval '1 day'
    ) as covered (day)
),

figures as (
    select
        {%- for column in storage_volume_key() %}
        volume_days.{{ column }},
        {%- endfor %}
        volume_days.covered_day as storage_day,
        volume_days.owner_name,
        volume_days.owner_email as user_email,
        volume_days.server_name,
        {%- for figure in carried_figures %}
        coalesce(volume_days.{{ figure }}_carried, carried_in.{{ figure }}) as {{ figure }},
        {%- endfor %}
        case
            when volume_days.covered_day = volume_days.storage_day and volume_days.largest_used_bytes is not null
                then volume_days.largest_used_bytes
            else coalesce(volume_days.used_bytes_carried, carried_in.used_bytes)
        end as largest_used_bytes,
        volume_days.covered_day > volume_days.storage_day or volume_days.used_bytes is null as used_carried_forward
    from volume_days
    left join carried_in on {{ session_key_matches('carried_in', 'volume_days', storage_volume_key()) }}
)

select
    {{ storage_volume_key() | join(', ') }},
    storage_day,
    owner_name,
    user_email,
    server_name,
    used_bytes,
    largest_used_bytes,
    capacity_bytes,
    quota_bytes,
    file_count,
    last_modified_at,
    used_carried_forward,
    {{ gb_months_of_day('used_bytes', 'storage_day') }} as gb_months,
    (select max(runs.id) from {{ source('raw', 'collector_runs') }} as runs) as last_collector_run_id
from figures

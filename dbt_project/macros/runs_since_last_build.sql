{#- "Collector runs newer than this table's newest": the incremental window of every mart built
    from observations or sessions. Closed above by the newest run recorded, which changes nothing
    (no row has a newer run) but lets the planner see a narrow range and use the index on
    `column`; an open `> (select ...)` is guessed at a third of the table and scanned whole.
    The newest run is read from the source table itself: through the staging view, max() would
    not use the primary key. -#}
{% macro runs_since_last_build(column) -%}
    {{ column }} > (select coalesce(max(built.last_collector_run_id), 0) from {{ this }} as built)
    and {{ column }} <= (select max(runs.id) from {{ source('raw', 'collector_runs') }} as runs)
{%- endmacro %}


{#- The earliest observation time the new runs can hold: a lower bound on "timestamp" that lets
    TimescaleDB skip every chunk (compressed history included) no new observation is in. A run without
    an observed_at (kind `external`: another writer, see the run_ids docs block) may hold any time, so
    then there is no bound. users_sync runs write no observations. -#}
{% macro earliest_observation_of_new_runs() -%}
    (
        select
            case
                when bool_or(runs.observed_at is null) then '-infinity'::timestamptz
                else coalesce(min(runs.observed_at), 'infinity'::timestamptz)
            end
        from {{ source('raw', 'collector_runs') }} as runs
        where
            runs.id > (select coalesce(max(built.last_collector_run_id), 0) from {{ this }} as built)
            and runs.kind <> 'users_sync'
    )
{%- endmacro %}

{#- The observations of the collector runs newer than this table's newest: what an incremental run reads. An empty
    table (after `dbt run --empty`, say) reads every observation instead, as a full build does; never both. Models
    calling this declare `-- depends_on: {{ ref('int_observations') }}`. -#}
{% macro observations_of_new_runs(columns='*') -%}
    select {{ columns }}
    from {{ ref('int_observations') }}
    where
        {{ runs_since_last_build('collector_run_id') }}
        and observed_at >= {{ earliest_observation_of_new_runs() }}
        and exists (select 1 from {{ this }})

    union all

    select {{ columns }}
    from {{ ref('int_observations') }}
    where not exists (select 1 from {{ this }})
{%- endmacro %}

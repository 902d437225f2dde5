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

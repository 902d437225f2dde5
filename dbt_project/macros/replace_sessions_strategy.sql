{#- Incremental strategy for user_sessions (`incremental_strategy='replace_sessions'`).

    The model's incremental run recomputes, for every session key (the model's meta.session_key)
    that received new observations, all sessions from a point where a session boundary is certain
    (recompute_from). Its result holds exactly those sessions. Replacing means: delete the
    existing sessions of those keys that start at or after the earliest recomputed start, then
    insert the recomputed ones. Sessions that a new observation merged away disappear, which
    a plain delete+insert on session_id would leave behind. Runs inside dbt's transaction. -#}
{% macro get_incremental_replace_sessions_sql(arg_dict) %}
    {%- set target = arg_dict["target_relation"] -%}
    {%- set recomputed = arg_dict["temp_relation"] -%}
    {%- set columns = get_quoted_csv(arg_dict["dest_columns"] | map(attribute="name")) -%}
    {%- set key = config.get("meta", {}).get("session_key") -%}
    {%- if not key -%}
        {{ exceptions.raise_compiler_error("replace_sessions needs the model's meta.session_key (a list of columns)") }}
    {%- endif -%}
    delete from {{ target }} as existing
    using (
        select
            {{ key | join(', ') }},
            min(session_start) as recompute_from
        from {{ recomputed }}
        group by {{ key | join(', ') }}
    ) as windows
    where
        {{ session_key_matches('existing', 'windows', key) }}
        and existing.session_start >= windows.recompute_from;

    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ recomputed }};
{% endmacro %}

{#- Incremental strategy for user_sessions (`incremental_strategy='replace_sessions'`).

    The model's incremental run recomputes, for every (user_email, pod_name, node_name) that
    received new observations, all sessions from a point where a session boundary is certain
    (recompute_from). Its result holds exactly those sessions. Replacing means: delete the
    existing sessions of those keys that start at or after the earliest recomputed start, then
    insert the recomputed ones. Sessions that a new observation merged away disappear, which
    a plain delete+insert on session_id would leave behind. Runs inside dbt's transaction. -#}
{% macro get_incremental_replace_sessions_sql(arg_dict) %}
    {%- set target = arg_dict["target_relation"] -%}
    {%- set recomputed = arg_dict["temp_relation"] -%}
    {%- set columns = get_quoted_csv(arg_dict["dest_columns"] | map(attribute="name")) -%}
    delete from {{ target }} as existing
    using (
        select
            user_email,
            pod_name,
            node_name,
            min(session_start) as recompute_from
        from {{ recomputed }}
        group by user_email, pod_name, node_name
    ) as windows
    where
        existing.user_email = windows.user_email
        and existing.pod_name = windows.pod_name
        and existing.node_name = windows.node_name
        and existing.session_start >= windows.recompute_from;

    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ recomputed }};
{% endmacro %}

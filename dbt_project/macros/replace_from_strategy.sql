{#- Incremental strategy `replace_from`, for models whose incremental run recomputes, for every key it touches
    (meta.replace.key: a list of columns, compared null-safely where session_key says so), all rows from a point
    on (the smallest meta.replace.from column among the recomputed rows of that key, such as session_start or
    day). Its result holds exactly those rows. Replacing means: delete the existing rows of those keys from that
    point on, then insert the recomputed ones. Rows that a new observation merged away disappear, which a plain
    delete+insert on an id would leave behind. Runs inside dbt's transaction. -#}
{% macro get_incremental_replace_from_sql(arg_dict) %}
    {%- set target = arg_dict["target_relation"] -%}
    {%- set recomputed = arg_dict["temp_relation"] -%}
    {%- set columns = get_quoted_csv(arg_dict["dest_columns"] | map(attribute="name")) -%}
    {%- set replace = config.get("meta", {}).get("replace") -%}
    {%- if not replace or not replace.get("key") or not replace.get("from") -%}
        {{ exceptions.raise_compiler_error(
            "replace_from needs the model's meta.replace: {key: [columns], from: column}"
        ) }}
    {%- endif -%}
    delete from {{ target }} as existing
    using (
        select
            {{ replace.key | join(', ') }},
            min({{ replace.from }}) as replace_from
        from {{ recomputed }}
        group by {{ replace.key | join(', ') }}
    ) as windows
    where
        {{ session_key_matches('existing', 'windows', replace.key) }}
        and existing.{{ replace.from }} >= windows.replace_from;

    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ recomputed }};
{% endmacro %}

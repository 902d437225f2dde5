{#- Run at the start of every dbt invocation: models must never build into the raw schema. -#}
{% macro assert_not_building_into_raw_schema() %}
    {% if target.schema | lower == env_var('RAW_SCHEMA', 'raw') | lower %}
        {{ exceptions.raise_compiler_error(
            "target schema '" ~ target.schema ~ "' is the raw schema: set DBT_SCHEMA to another schema "
            ~ "(models must never build into RAW_SCHEMA)") }}
    {% endif %}
{% endmacro %}

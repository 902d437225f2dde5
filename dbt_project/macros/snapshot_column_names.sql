{#- The column names of a built relation (empty while parsing, when nothing is queried). -#}
{% macro snapshot_column_names(relation) -%}
    {%- if execute -%}
        {{ return(adapter.get_columns_in_relation(relation) | map(attribute='name') | list) }}
    {%- endif -%}
    {{ return([]) }}
{%- endmacro %}

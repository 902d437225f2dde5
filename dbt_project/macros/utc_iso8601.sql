{#- A timestamptz as ISO 8601 text with its UTC offset, whatever the session time zone. -#}
{% macro utc_iso8601(column) -%}
    to_char({{ column }} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || '+00:00'
{%- endmacro %}

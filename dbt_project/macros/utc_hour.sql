{#- The UTC hour a time falls in, as a timestamptz (the hourly objects' bucket, whatever the session time zone). -#}
{% macro utc_hour(column) -%}
    date_trunc('hour', {{ column }} at time zone 'UTC') at time zone 'UTC'
{%- endmacro %}

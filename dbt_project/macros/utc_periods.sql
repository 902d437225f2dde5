{#- The UTC hour or day a time falls in, as a timestamptz (the hourly objects' bucket and the calendar split,
    whatever the session time zone). -#}
{% macro utc_hour(column) -%}
    date_trunc('hour', {{ column }} at time zone 'UTC') at time zone 'UTC'
{%- endmacro %}

{% macro utc_day(column) -%}
    date_trunc('day', {{ column }} at time zone 'UTC') at time zone 'UTC'
{%- endmacro %}

{#- Today, as a UTC calendar day (the day the marts' days are counted in), whatever the session's time zone. -#}
{% macro utc_today() -%}
    (now() at time zone 'UTC')::date
{%- endmacro %}

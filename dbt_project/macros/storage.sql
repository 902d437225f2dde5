{#- A storage volume (spec 3.8): a per-user PVC or a directory of a shared home volume, named within its cluster
    and namespace (either may be null: compared null-safely, as in the session key). Declared once. -#}
{% macro storage_volume_key() -%}
    {{ return(['layout', 'cluster', 'namespace', 'volume_name']) }}
{%- endmacro %}

{#- GB-months (docs block storage_rule): GiB held for a day, divided by the days of that day's month, so a month's
    days add up to GiB x months. -#}
{% macro gb_months_of_day(bytes, day) -%}
    {{ bytes }} / 1073741824.0
    / extract(day from (date_trunc('month', {{ day }}) + interval '1 month - 1 day'))
{%- endmacro %}

{#- The moment a storage day is attributed at: its last microsecond, as its size is the size at day end. -#}
{% macro storage_day_end(day) -%}
    (({{ day }} + 1)::timestamp at time zone 'UTC' - interval '1 microsecond')
{%- endmacro %}

{#- Today, as a UTC calendar day (the day the marts' days are counted in), whatever the session's time zone. -#}
{% macro utc_today() -%}
    (now() at time zone 'UTC')::date
{%- endmacro %}

{#- What a session-day uses of an allocation's compute resource (docs block allocation_rule): GPU hours are GPUs x
    hours (one GPU where the count is unknown: a predecessor's GPU session), core hours the requested cores x hours. -#}
{% macro allocation_compute_use(resource, days) -%}
    case {{ resource }}
        when 'gpu_hours' then coalesce({{ days }}.gpu_device_hours, {{ days }}.gpu_hours)
        when 'cpu_core_hours' then {{ days }}.cpu_requested_core_hours
    end
{%- endmacro %}

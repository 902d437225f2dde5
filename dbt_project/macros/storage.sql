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


{#- What a session-day uses of an allocation's compute resource (docs block allocation_rule): GPU hours are GPUs x
    hours (one GPU where the count is unknown: a predecessor's GPU session), core hours the requested cores x hours. -#}
{% macro allocation_gpu_hours(days) -%}
    coalesce({{ days }}.gpu_device_hours, {{ days }}.gpu_hours)
{%- endmacro %}

{% macro allocation_core_hours(days) -%}
    {{ days }}.cpu_requested_core_hours
{%- endmacro %}

{#- A day's use of the allocation's resource, from a row holding every resource's (int_allocation_usage_days). -#}
{% macro allocation_resource(resource, days) -%}
    case {{ resource }}
        when 'gpu_hours' then {{ days }}.gpu_hours
        when 'cpu_core_hours' then {{ days }}.cpu_core_hours
        when 'storage_gb_months' then {{ days }}.storage_gb_months
    end
{%- endmacro %}

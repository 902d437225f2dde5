{{ config(materialized='view') }}

{#- Each session's hours by the UTC calendar day they happened in (docs block calendar_split): daily and monthly
    rollups count an hour in its own day, and a session's days add up to its runtime. Idle and active time count
    stretch by stretch in the day they happened (int_session_day_parts); requests and the node type are the
    session's. -#}

with

parts as (
    select * from {{ ref('int_session_day_parts') }}
),

sessions as (
    select * from {{ ref('user_sessions') }}
),

days as (
    select
        parts.session_id,
        {%- for column in session_key() %}
        parts.{{ column }},
        {%- endfor %}
        parts.session_start,
        parts.day,
        sessions.node_type,
        {{ hours_between('parts.part_start', 'parts.part_end') }} as hours,
        sessions.gpu_count,
        sessions.cpu_request_cores,
        sessions.avg_cpu_usage_cores,
        sessions.memory_request_bytes,
        sessions.measured_observation_count,
        sessions.efficiency_cpu_used_core_hours is not null as efficiency_known,
        parts.observation_count,
        parts.idle_seconds
    from parts
    left join sessions on parts.session_id = sessions.session_id
)

select
    session_id,
    {{ session_key() | join(', ') }},
    session_start,
    day,
    node_type,
    hours,
    {{ hours_of_node_type('gpu', 'node_type', 'hours') }} as gpu_hours,
    {{ hours_of_node_type('cpu', 'node_type', 'hours') }} as cpu_hours,
    gpu_count * hours as gpu_device_hours,
    {{ measured_hours('idle_seconds', 'measured_observation_count') }} as idle_hours,
    case
        when node_type = 'gpu' then {{ measured_hours('idle_seconds', 'measured_observation_count') }}
    end as idle_gpu_hours,
    cpu_request_cores * hours::numeric as cpu_requested_core_hours,
    avg_cpu_usage_cores * hours::numeric as cpu_used_core_hours,
    case when efficiency_known then avg_cpu_usage_cores * hours::numeric end as efficiency_cpu_used_core_hours,
    case when efficiency_known then cpu_request_cores * hours::numeric end as efficiency_cpu_requested_core_hours,
    memory_request_bytes / 1073741824.0 * hours::numeric as memory_gib_hours,
    observation_count
from days

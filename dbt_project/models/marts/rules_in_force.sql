-- Built after every incremental mart, so a rebuild cut short (a CronJob's deadline) is still owed at the next build.
-- depends_on: {{ ref('user_sessions') }}
-- depends_on: {{ ref('int_session_day_parts') }}
-- depends_on: {{ ref('session_days') }}
-- depends_on: {{ ref('user_session_stats') }}
-- depends_on: {{ ref('nodes') }}
-- depends_on: {{ ref('hourly_pod_usage') }}
{{ config(materialized='table') }}

{#- The business rules this build ran with (spec 4), one row each. `jupyterhub-metrics build` compares them
    with the rules it is about to run with and offers the full rebuild a change needs. `rules_version`
    names the rules' own revision (dbt_project.yml): `jupyterhub-metrics build` rebuilds once when it changed. -#}

select
    rule,
    value
from (
    values
    ('rules_version', {{ sql_string(var('rules_version')) }}),
    ('session_gap_minutes', '{{ var("session_gap_minutes") }}'),
    ('cpu_node_pattern', {{ sql_string(var('cpu_node_pattern')) }}),
    ('gpu_node_patterns', {{ sql_string(var('gpu_node_patterns')) }}),
    ('idle_cpu_cores', '{{ var("idle_cpu_cores") | float }}'),
    ('idle_gpu_utilization', '{{ var("idle_gpu_utilization") | float }}')
) as rules (rule, value)

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
    ('idle_cpu_cores', '{{ var("idle_cpu_cores") }}')
) as rules (rule, value)

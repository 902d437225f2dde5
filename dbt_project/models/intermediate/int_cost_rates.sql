-- depends_on: {{ ref('cost_rates') }}
-- depends_on: {{ ref('example_cost_rates') }}
{#- The rates in force (docs block cost_rule): seeds/cost_rates.csv, which the admin edits and which ships
    empty (no rates, no cost: never a made-up zero), or the demo's example rates. -#}
{%- set use_example = var('example_cost_rates') | string | lower in ('true', '1', 'yes') %}

with

rates as (
    select * from {{ ref('example_cost_rates' if use_example else 'cost_rates') }}
)

select
    valid_from,
    valid_to,
    gpu_hour,
    cpu_core_hour,
    memory_gib_hour,
    currency
from rates

-- depends_on: {{ ref('cost_rates') }}
-- depends_on: {{ ref('example_cost_rates') }}
{#- The rates in force (docs block cost_rule): seeds/cost_rates.csv, which the admin edits and which ships empty
    (no rates, no cost: never a made-up zero), or the demo's example rates. A rate may name a GPU model (empty: any
    model). Each day has one rate per model, or costs (and anything joined to them) would double: the seeds are
    checked as they load (assert_cost_rates_valid), so a bad file never reaches this model. -#}
{%- set use_example = var('example_cost_rates') | string | lower in ('true', '1', 'yes') %}
{%- set seed = ref('example_cost_rates' if use_example else 'cost_rates') %}
{%- set has_gpu_model = 'gpu_model' in snapshot_column_names(seed) %}
{%- set gpu_model = "nullif(trim(gpu_model), '')" if has_gpu_model else 'null::text' %}
{#- The price of a GB-month of storage (docs block storage_rule), a later column: a file without it prices none. #}
{%- set storage_gb_month = 'storage_gb_month' if 'storage_gb_month' in snapshot_column_names(seed)
    else 'null::numeric' %}

with

rates as (
    select * from {{ seed }}
),

typed as (
    select
        valid_from,
        valid_to,
        {{ gpu_model }} as gpu_model,
        gpu_hour,
        cpu_core_hour,
        memory_gib_hour,
        {{ storage_gb_month }} as storage_gb_month,
        currency
    from rates
)

select * from typed

{#- Fails the build, in one line naming the rows, when a rate period ends before it begins (or lacks a date), or two
    periods of the same GPU model (or both for any model) share a day. Runs while int_cost_rates is built, so a
    plain `dbt build` refuses an edited seed as `jupyterhub-metrics build` does. -#}
{% macro assert_cost_rates_valid(seed, gpu_model) %}
    {%- if execute -%}
        {%- set problems = run_query(
            "with rates as (select row_number() over () as n, valid_from, valid_to, " ~ gpu_model ~ " as model"
            ~ " from " ~ seed ~ ")"
            ~ " select 'the period ' || " ~ rate_period('') ~ " || ' ends before it begins or lacks a date'"
            ~ " from rates where valid_from is null or valid_to is null or valid_to <= valid_from"
            ~ " union all"
            ~ " select 'the periods ' || " ~ rate_period('a.') ~ " || ' and ' || " ~ rate_period('b.') ~ " || ' overlap'"
            ~ " from rates as a join rates as b on a.n < b.n and a.model is not distinct from b.model"
            ~ " and a.valid_from < b.valid_to and b.valid_from < a.valid_to"
        ) -%}
        {%- if problems.rows | length > 0 -%}
            {{ exceptions.raise_compiler_error(
                "cost rates in " ~ seed.identifier ~ ": " ~ (problems.columns[0].values() | join('; '))
                ~ "; fix seeds/" ~ seed.identifier ~ ".csv so that each day has one rate per GPU model"
                ~ " (valid_to is the first day a rate no longer applies)"
            ) }}
        {%- endif -%}
    {%- endif -%}
{% endmacro %}

{% macro rate_period(alias) -%}
    coalesce({{ alias }}valid_from::text, '?') || ' to ' || coalesce({{ alias }}valid_to::text, '?')
    || ' (' || coalesce('GPU model ' || {{ alias }}model, 'any GPU model') || ')'
{%- endmacro %}

{#- Fails the build, in one line naming them, when terms end before they begin or lack a date. -#}
{% macro assert_terms_valid(seed) %}
    {%- if execute -%}
        {%- set inverted = run_query(
            "select name || ' (' || coalesce(starts_on::text, '?') || ' to ' || coalesce(ends_on::text, '?') || ')'"
            ~ " from " ~ seed ~ " where starts_on is null or ends_on is null or ends_on < starts_on"
        ) -%}
        {%- if inverted.rows | length > 0 -%}
            {{ exceptions.raise_compiler_error(
                "terms: " ~ (inverted.columns[0].values() | join('; ')) ~ " end before they begin or lack a date;"
                ~ " fix seeds/" ~ seed.identifier ~ ".csv (ends_on is the term's last day)"
            ) }}
        {%- endif -%}
    {%- endif -%}
{% endmacro %}

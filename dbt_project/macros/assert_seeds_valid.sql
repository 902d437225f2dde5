{#- The admins' seeds, checked as each is loaded: every seed runs its check as a post-hook inside the transaction
    that loads it, so a bad file fails in one line naming its lines, and the rollback leaves the table as it was
    (a plain `dbt build` or `dbt seed` refuses it too). `jupyterhub-metrics build` first loads them all into a
    schema of their own and runs these same checks there, so that a bad file stops the build before anything is
    replaced. Line numbers count the header as line 1; dbt inserts the rows in the file's order. -#}

{% macro seed_lines(seed, columns) -%}
    select row_number() over () + 1 as line, {{ columns }} from {{ seed }}
{%- endmacro %}

{% macro raise_seed_problems(seed, problems, advice) %}
    {%- if problems.rows | length > 0 -%}
        {%- set shown = problems.columns[0].values()[:5] | list -%}
        {%- set more = problems.rows | length - shown | length -%}
        {{ exceptions.raise_compiler_error(
            "seeds/" ~ seed.identifier ~ ".csv: " ~ (shown | join('; '))
            ~ (" (and " ~ more ~ " more)" if more > 0 else "") ~ "; " ~ advice
        ) }}
    {%- endif -%}
{% endmacro %}

{#- Each day has one rate per GPU model (or for any model): a period must begin before it ends, and two periods
    of the same model may not share a day; prices are finite and not negative, and say their currency. -#}
{% macro assert_cost_rates_valid(seed) %}
    {%- if execute -%}
        {%- set seed_columns = snapshot_column_names(seed) -%}
        {%- set gpu_model = "nullif(trim(gpu_model), '')" if 'gpu_model' in seed_columns else 'null::text' -%}
        {%- set storage = 'storage_gb_month' if 'storage_gb_month' in seed_columns else 'null::numeric' -%}
        {%- set prices = 'gpu_hour, cpu_core_hour, memory_gib_hour, storage' -%}
        {%- set problems = run_query(
            "with rates as (" ~ seed_lines(seed, "valid_from, valid_to, " ~ gpu_model ~ " as model,"
                ~ " gpu_hour, cpu_core_hour, memory_gib_hour, " ~ storage ~ " as storage, currency") ~ ")"
            ~ " select 'line ' || line || ': the period ' || " ~ rate_period('') ~ " || ' ends before it begins or lacks a date', line"
            ~ " from rates where valid_from is null or valid_to is null or valid_to <= valid_from"
            ~ " union all"
            ~ " select 'line ' || line || ': a price is negative, not a number or infinite', line"
            ~ " from rates where least(" ~ prices ~ ") < 0"
            ~ " or 'NaN'::numeric in (" ~ prices ~ ")"
            ~ " or array[" ~ prices ~ "]::text[] && array['Infinity', '-Infinity']"
            ~ " union all"
            ~ " select 'line ' || line || ': no currency', line from rates where coalesce(trim(currency), '') = ''"
            ~ " union all"
            ~ " select 'lines ' || a.line || ' and ' || b.line || ': the periods ' || " ~ rate_period('a.')
            ~ " || ' and ' || " ~ rate_period('b.') ~ " || ' overlap', a.line"
            ~ " from rates as a join rates as b on a.line < b.line and a.model is not distinct from b.model"
            ~ " and a.valid_from < b.valid_to and b.valid_from < a.valid_to"
            ~ " order by 2, 1"
        ) -%}
        {{ raise_seed_problems(seed, problems,
            "fix the file (valid_to is the first day a rate no longer applies) and build again") }}
    {%- endif -%}
{% endmacro %}

{% macro rate_period(alias) -%}
    coalesce({{ alias }}valid_from::text, '?') || ' to ' || coalesce({{ alias }}valid_to::text, '?')
    || ' (' || coalesce('GPU model ' || {{ alias }}model, 'any GPU model') || ')'
{%- endmacro %}

{#- A term has a name of its own and a first day on or before its last (terms may overlap). -#}
{% macro assert_terms_valid(seed) %}
    {%- if execute -%}
        {%- set problems = run_query(
            "with terms as (" ~ seed_lines(seed, "name, starts_on, ends_on") ~ ")"
            ~ " select 'line ' || line || ': ' || coalesce(name, '(no name)') || ' (' || coalesce(starts_on::text, '?')"
            ~ " || ' to ' || coalesce(ends_on::text, '?') || ') ends before it begins or lacks a date', line"
            ~ " from terms where starts_on is null or ends_on is null or ends_on < starts_on"
            ~ " union all"
            ~ " select 'line ' || line || ': a term with no name', line from terms where coalesce(trim(name), '') = ''"
            ~ " union all"
            ~ " select 'lines ' || a.line || ' and ' || b.line || ': two terms named ' || a.name, a.line"
            ~ " from terms as a join terms as b on a.line < b.line and a.name = b.name"
            ~ " order by 2, 1"
        ) -%}
        {{ raise_seed_problems(seed, problems, "fix the file (ends_on is the term's last day) and build again") }}
    {%- endif -%}
{% endmacro %}

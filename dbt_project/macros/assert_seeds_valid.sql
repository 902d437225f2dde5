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

{#- An allocation (docs block allocation_rule) grants one group, department or user an amount of one resource over
    a period: its own dates, or a term's (seed terms; both is a mistake). The seed's post-hook checks each row; the
    period a term gives, and overlaps (one grantee, one resource, two allocations sharing a day), are checked where
    the terms are known: int_allocations's pre-hook, before anything reads them. -#}
{% macro assert_allocations_valid(seed, terms=none) %}
    {%- if execute -%}
        {%- set kinds = "('group', 'department', 'user')" -%}
        {%- set resources = "('gpu_hours', 'cpu_core_hours', 'storage_gb_months')" -%}
        {%- set periods = "select rows.*, coalesce(terms.starts_on, rows.starts_on) as first_day,"
            ~ " coalesce(terms.ends_on, rows.ends_on) as last_day, terms.term is not null as term_known from rows"
            ~ (" left join " ~ terms ~ " as terms on terms.term = rows.term_name" if terms
                else " left join (select null::text as term, null::date as starts_on, null::date as ends_on) as terms"
                    ~ " on false") -%}
        {%- set problems = run_query(
            "with rows as (" ~ seed_lines(seed, "nullif(trim(name), '') as name, grantee_kind, nullif(trim(grantee), '')"
                ~ " as grantee, resource, amount, nullif(trim(term), '') as term_name, starts_on, ends_on,"
                ~ " coalesce(first_warning_percent, 75) as first_warning, coalesce(second_warning_percent, 90)"
                ~ " as second_warning") ~ "),"
            ~ " periods as (" ~ periods ~ ")"
            ~ " select 'line ' || line || ': an allocation with no name', line from periods where name is null"
            ~ " union all"
            ~ " select 'line ' || line || ': ' || name || ' grants to ' || coalesce(grantee_kind, '(nothing)')"
            ~ " || '; say group, department or user', line from periods"
            ~ " where grantee_kind is null or grantee_kind not in " ~ kinds
            ~ " union all"
            ~ " select 'line ' || line || ': ' || name || ' names no grantee', line from periods where grantee is null"
            ~ " union all"
            ~ " select 'line ' || line || ': ' || name || ' grants ' || coalesce(resource, '(nothing)')"
            ~ " || '; say gpu_hours, cpu_core_hours or storage_gb_months', line from periods"
            ~ " where resource is null or resource not in " ~ resources
            ~ " union all"
            ~ " select 'line ' || line || ': ' || name || ' grants ' || coalesce(amount::text, 'no amount')"
            ~ " || '; an amount must be a positive number', line from periods"
            ~ " where amount is null or not amount > 0 or amount::text in ('NaN', 'Infinity')"
            ~ " union all"
            ~ " select 'line ' || line || ': ' || name || ' gives both a term and dates; give one', line from periods"
            ~ " where term_name is not null and (starts_on is not null or ends_on is not null)"
            ~ " union all"
            ~ " select 'line ' || line || ': ' || name || ' names the term ' || term_name || ', which seeds/terms.csv"
            ~ " does not have', line from periods where term_name is not null and not term_known and " ~ (terms is not none)
            ~ " union all"
            ~ " select 'line ' || line || ': ' || name || ' (' || coalesce(first_day::text, '?') || ' to '"
            ~ " || coalesce(last_day::text, '?') || ') ends before it begins or lacks a date', line from periods"
            ~ " where (term_name is null or term_known) and (first_day is null or last_day is null or last_day < first_day)"
            ~ " union all"
            ~ " select 'line ' || line || ': ' || name || ' warns at ' || first_warning || ' and ' || second_warning"
            ~ " || ' percent; give 0 < first < second <= 100', line from periods"
            ~ " where not (first_warning > 0 and first_warning < second_warning and second_warning <= 100)"
            ~ " union all"
            ~ " select 'lines ' || a.line || ' and ' || b.line || ': two allocations named ' || a.name, a.line"
            ~ " from periods as a join periods as b on a.line < b.line and a.name = b.name"
            ~ " union all"
            ~ " select 'lines ' || a.line || ' and ' || b.line || ': ' || a.name || ' and ' || b.name || ' both grant '"
            ~ " || a.grantee_kind || ' ' || a.grantee || ' ' || a.resource || ' on the same days', a.line"
            ~ " from periods as a join periods as b on a.line < b.line and a.grantee_kind = b.grantee_kind"
            ~ " and a.grantee = b.grantee and a.resource = b.resource"
            ~ " and a.first_day <= b.last_day and b.first_day <= a.last_day"
            ~ " order by 2, 1"
        ) -%}
        {{ raise_seed_problems(seed, problems,
            "fix the file (ends_on is the last day; a term's name stands for its dates) and build again") }}
    {%- endif -%}
{% endmacro %}

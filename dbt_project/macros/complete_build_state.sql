{#- What the last complete build built, so that `jupyterhub-metrics build` can run only the `cycle` selector after
    each collection (views and seeds change only with the project's files and rules). The loader passes the
    fingerprint of those files and rules in JHM_PROJECT_FINGERPRINT. A build, run or seed that selects a view or a
    seed forgets the recorded build when it starts (it may re-create them from other files or rules); one that ends
    with every model, seed and snapshot built records the fingerprint it was given. A plain `dbt build` is given
    none, so the loader's next build is complete again. A run of only tables, incremental models or snapshots (the
    cycle, or `dbt run --select user_sessions`) leaves the views and seeds as they were, and the record with them. -#}

{% macro complete_build_table() -%}
    {{ target.schema }}.complete_build
{%- endmacro %}

{% macro changes_relations() -%}
    {%- set changes = [] -%}
    {%- if flags.WHICH in ('build', 'run', 'seed', 'snapshot') -%}
        {%- for unique_id in selected_resources if unique_id in graph.nodes -%}
            {%- set node = graph.nodes[unique_id] -%}
            {%- if node.resource_type == 'seed'
                or (node.resource_type == 'model' and node.config.materialized not in ('table', 'incremental')) -%}
                {%- do changes.append(unique_id) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(changes | length > 0) }}
{%- endmacro %}

{% macro forget_complete_build() %}
    {% if execute and changes_relations() %}
        create table if not exists {{ complete_build_table() }} (
            fingerprint text not null,
            finished_at timestamptz not null
        );
        delete from {{ complete_build_table() }};
    {% endif %}
{% endmacro %}

{% macro record_complete_build(results) %}
    {% set fingerprint = env_var('JHM_PROJECT_FINGERPRINT', '') %}
    {% if execute and changes_relations() and fingerprint %}
        {% set succeeded = [] %}
        {% for result in results if result.status in ('success', 'pass') %}
            {% do succeeded.append(result.node.unique_id) %}
        {% endfor %}
        {% set missing = [] %}
        {% for node in graph.nodes.values()
            if node.resource_type in ('model', 'seed', 'snapshot') and node.config.materialized != 'ephemeral'
                and node.unique_id not in succeeded %}
            {% do missing.append(node.unique_id) %}
        {% endfor %}
        {% if not missing %}
            insert into {{ complete_build_table() }} (fingerprint, finished_at) values ('{{ fingerprint }}', now());
        {% endif %}
    {% endif %}
{% endmacro %}

{#- The last build that finished with every selected node built (the cycle or a complete build), and the collector
    runs it had read: those finished before it began. The test assert_marts_follow_collections compares it with the
    collections, so that `jupyterhub-metrics check` notices builds that keep failing or stopped running. One row,
    replaced by each such build. -#}
{% macro published_build_table() -%}
    {{ target.schema }}.published_build
{%- endmacro %}

{% macro ensure_published_build_table() %}
    {#- In the schema where it exists: a `test` before the first build leaves the schema to the build. -#}
    {% if execute and flags.WHICH in ('build', 'run', 'test') %}
        do $published$
        begin
            if to_regnamespace({{ dbt.string_literal(target.schema) }}) is not null then
                create table if not exists {{ published_build_table() }} (
                    finished_at timestamptz not null,
                    runs_through bigint not null
                );
            end if;
        end
        $published$
    {% endif %}
{% endmacro %}

{% macro record_published_build(results) %}
    {% if execute and flags.WHICH in ('build', 'run') %}
        {% set built = [] %}
        {% set unbuilt = [] %}
        {% for result in results if result.node.resource_type in ('model', 'seed', 'snapshot') %}
            {% do (built if result.status in ('success', 'pass', 'no-op') else unbuilt).append(result.node.unique_id) %}
        {% endfor %}
        {% if built and not unbuilt %}
            delete from {{ published_build_table() }};
            insert into {{ published_build_table() }} (finished_at, runs_through)
            select now(), coalesce(max(id), 0)
            from {{ source('raw', 'collector_runs') }}
            where finished_at <= '{{ run_started_at }}'::timestamptz;
        {% endif %}
    {% endif %}
{% endmacro %}

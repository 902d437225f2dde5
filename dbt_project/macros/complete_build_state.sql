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
